from .classification import classification_metrics, topk_correct

__all__ = ["classification_metrics", "topk_correct"]
