from lienzo.metrics.classification import classification_metrics, target_rank

__all__ = ["classification_metrics", "target_rank"]
