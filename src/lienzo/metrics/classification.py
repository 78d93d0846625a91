"""Top-1, top-5, cross-entropy, per-class figures and the confusion matrix, from logits and targets.

Every figure comes from one stable ranking of the scores, so ties (common with bf16 logits) are
broken the same way everywhere: top-1, the confusion matrix's diagonal and per-class top-1 agree.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def target_rank(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """0-based rank of each target among its row's scores (ties: the lower class index ranks first)."""
    order = logits.argsort(dim=1, descending=True, stable=True)
    return (order == targets[:, None]).float().argmax(dim=1)


def classification_metrics(logits: torch.Tensor, targets: torch.Tensor, class_names: list[str],
                           cross_entropy: bool = True) -> dict:
    """Everything metrics.json holds for one split.

    `logits` may be any scores whose ranking means something (an SVM's decision values); pass
    cross_entropy=False when they are not log-probabilities up to a constant, and it is reported as None.
    top1/top5 are fractions in [0, 1]; cross_entropy is the mean negative log-likelihood in nats;
    per_class maps each class name to its own top1, top5, cross_entropy and count;
    confusion[i][j] counts images of true class i predicted as class j.
    """
    logits, targets = logits.float().cpu(), targets.long().cpu()
    num_classes = len(class_names)
    rank = target_rank(logits, targets)
    top1, top5 = (rank == 0).double(), (rank < min(5, num_classes)).double()
    predicted = logits.argsort(dim=1, descending=True, stable=True)[:, 0]
    losses = (F.cross_entropy(logits, targets, reduction="none").double() if cross_entropy
              else torch.full((len(targets),), float("nan"), dtype=torch.float64))
    counts = torch.bincount(targets, minlength=num_classes)
    per_sum = {name: torch.zeros(num_classes, dtype=torch.float64).index_add_(0, targets, values)
               for name, values in (("top1", top1), ("top5", top5), ("cross_entropy", losses))}
    confusion = torch.bincount(targets * num_classes + predicted, minlength=num_classes**2).view(num_classes, num_classes)
    per_class = {}
    for i, name in enumerate(class_names):
        n = int(counts[i])
        per_class[name] = {key: (_finite(per_sum[key][i] / n) if n else None) for key in per_sum}
        per_class[name]["count"] = n
    return {
        "count": int(len(targets)),
        "top1": float(top1.mean()),
        "top5": float(top5.mean()),
        "cross_entropy": _finite(losses.mean()),
        "per_class": per_class,
        "confusion": confusion.tolist(),
    }


def _finite(value) -> float | None:
    value = float(value)
    return value if value == value else None  # NaN (no probabilities) → None in JSON
