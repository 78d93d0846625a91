"""The classify task's figures: confusion matrix, per-class accuracy, predictions, weight movement."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from lienzo.report.plots import plt, save_figure as _save


def plot_confusion(confusion: list[list[int]], class_names: list[str], path: Path, title: str) -> Path:
    matrix = np.asarray(confusion, dtype=float)
    rates = matrix / np.maximum(matrix.sum(1, keepdims=True), 1)
    k = len(class_names)
    size = min(max(4.0, 0.45 * k + 2), 30)
    fig, ax = plt.subplots(figsize=(size, size * 0.9))
    image = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
    ax.set_xticks(range(k), class_names, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(k), class_names, fontsize=8)
    ax.set(xlabel="predicted class", ylabel="true class", title=title)
    if k <= 25:
        for i in range(k):
            for j in range(k):
                if matrix[i, j]:
                    ax.text(j, i, f"{int(matrix[i, j])}", ha="center", va="center", fontsize=7,
                            color="white" if rates[i, j] > 0.5 else "black")
    return _save(fig, path)


def plot_per_class(per_class: dict, path: Path, title: str) -> Path:
    names = list(per_class)
    top1 = [100 * (per_class[n]["top1"] or 0) for n in names]
    top5 = [100 * (per_class[n]["top5"] or 0) for n in names]
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(max(6, 0.5 * len(names) + 2), 3.8))
    ax.bar(x - 0.2, top1, 0.4, label="top-1")
    ax.bar(x + 0.2, top5, 0.4, label="top-5")
    ax.set_xticks(x, names, rotation=60, ha="right", fontsize=8)
    ax.set(ylabel="accuracy (%)", ylim=(0, 100), title=title)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="lower right")
    return _save(fig, path)


def plot_predictions(images: torch.Tensor, labels: torch.Tensor, logits: torch.Tensor, class_names: list[str],
                     path: Path, per_kind: int = 8) -> Path:
    """A grid of test images with their top-5 classes and probabilities: right ones, then wrong ones."""
    probs = logits.float().softmax(1)
    k = min(5, len(class_names))
    top_p, top_i = probs.topk(k, dim=1)
    right = (top_i[:, 0] == labels).nonzero().flatten()[:per_kind].tolist()
    wrong = (top_i[:, 0] != labels).nonzero().flatten()[:per_kind].tolist()
    chosen = [(i, True) for i in right] + [(i, False) for i in wrong]
    cols = 4
    rows = max(1, math.ceil(len(chosen) / cols))
    fig, axes = plt.subplots(rows, cols * 2, figsize=(cols * 4.2, rows * 1.9),
                             gridspec_kw={"width_ratios": [1, 1.6] * cols})
    axes = np.atleast_2d(axes)
    for ax in axes.flat:
        ax.axis("off")
    for n, (index, ok) in enumerate(chosen):
        ax_img, ax_txt = axes[n // cols, 2 * (n % cols)], axes[n // cols, 2 * (n % cols) + 1]
        image = images[index].permute(1, 2, 0).numpy()
        ax_img.imshow(image[..., 0] if image.shape[2] == 1 else image, cmap="gray" if image.shape[2] == 1 else None)
        ax_img.set_title(("✓ " if ok else "✗ ") + class_names[int(labels[index])], fontsize=8,
                         color="green" if ok else "crimson")
        lines = [f"{100 * float(p):5.1f}% {class_names[int(c)]}" for p, c in zip(top_p[index], top_i[index])]
        ax_txt.text(0, 0.5, "\n".join(lines), fontsize=7, va="center", family="monospace")
    return _save(fig, path)


def plot_weight_movement(movement: dict[str, float], path: Path) -> Path:
    """Sum of squared differences from the pretrained weights per layer, input to output (thesis Fig. D.5)."""
    names, values = list(movement), list(movement.values())
    fig, ax = plt.subplots(figsize=(max(6, 0.35 * len(names) + 2), 3.8))
    ax.bar(range(len(names)), values, color="#4c72b0")
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=70, ha="right", fontsize=7)
    ax.set_ylabel("Σ (w − w_pretrained)²")
    ax.set_yscale("log" if values and max(values) > 100 * max(min(v for v in values if v > 0) if any(values) else 1, 1e-12) else "linear")
    ax.set_title("weight movement per layer", fontsize=10)
    return _save(fig, Path(path))
