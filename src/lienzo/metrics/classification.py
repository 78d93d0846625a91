"""Top-1, top-5, cross-entropy, per-class figures and the confusion matrix, from logits and targets."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torchmetrics.functional.classification import multiclass_accuracy, multiclass_confusion_matrix


def topk_correct(logits: torch.Tensor, targets: torch.Tensor, k: int) -> torch.Tensor:
    """Boolean per sample: is the target among the k highest scores?"""
    k = min(k, logits.shape[1])
    return (logits.topk(k, dim=1).indices == targets[:, None]).any(dim=1)


def classification_metrics(logits: torch.Tensor, targets: torch.Tensor, class_names: list[str]) -> dict:
    """Everything metrics.json holds for one split.

    top1/top5 are fractions in [0, 1]; cross_entropy is the mean negative log-likelihood in nats;
    per_class maps each class name to its own top1, top5, cross_entropy and count;
    confusion[i][j] counts images of true class i predicted as class j.
    """
    logits, targets = logits.float().cpu(), targets.long().cpu()
    num_classes = len(class_names)
    k5 = min(5, num_classes)
    losses = F.cross_entropy(logits, targets, reduction="none")
    counts = torch.bincount(targets, minlength=num_classes)
    class_ce = torch.zeros(num_classes, dtype=torch.float64).index_add_(0, targets, losses.double())
    per_top1 = multiclass_accuracy(logits, targets, num_classes, average=None, top_k=1)
    per_top5 = multiclass_accuracy(logits, targets, num_classes, average=None, top_k=k5)
    confusion = multiclass_confusion_matrix(logits, targets, num_classes)
    per_class = {}
    for i, name in enumerate(class_names):
        n = int(counts[i])
        per_class[name] = {
            "top1": float(per_top1[i]) if n else None,
            "top5": float(per_top5[i]) if n else None,
            "cross_entropy": float(class_ce[i] / n) if n else None,
            "count": n,
        }
    return {
        "count": int(len(targets)),
        "top1": float(topk_correct(logits, targets, 1).float().mean()),
        "top5": float(topk_correct(logits, targets, k5).float().mean()),
        "cross_entropy": float(losses.mean()),
        "per_class": per_class,
        "confusion": confusion.tolist(),
    }
