"""matplotlib figures of a run, each saved atomically as PNG."""

from __future__ import annotations

import io
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from lienzo.runs import atomic_write_bytes  # noqa: E402


def save_figure(fig, path: Path) -> Path:
    """Save a matplotlib figure as PNG atomically and close it."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
    return path


SPLIT_PREFIXES = ("train_", "val_", "test_")
SPLIT_LABELS = {"train_": ("training", "-o"), "val_": ("validation", "-s"), "test_": ("test", "-^")}
NOT_CURVES = ("epoch", "seconds", "step")


def curve_groups(history: list[dict]) -> dict[str, list[str]]:
    """Logged columns grouped into one panel per quantity: {"loss": ["train_loss", "val_loss"], "lr": [...]}.

    Whatever a task logs gets a curve; train_/val_/test_ versions of a quantity share a panel."""
    columns: list[str] = []
    for row in history:
        columns += [k for k in row if k not in columns]
    groups: dict[str, list[str]] = {}
    for column in columns:
        if column in NOT_CURVES:
            continue
        if all(is_missing(row.get(column)) for row in history):
            continue
        base = column
        for prefix in SPLIT_PREFIXES:
            base = base.removeprefix(prefix)
        base = "lr" if base.startswith("lr") else base
        groups.setdefault(base, []).append(column)
    return groups


def is_missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def logged_points(history: list[dict], column: str) -> tuple[list, list]:
    """(epochs, values) of the rows that logged `column`: a curve scored every few epochs is still a line."""
    points = [(row["epoch"], row[column]) for row in history if not is_missing(row.get(column))]
    return [e for e, _ in points], [v for _, v in points]


def panel_grid(panels: int):
    """A figure with one panel per quantity, three to a row; returns (figure, the panels in order)."""
    panels = max(panels, 1)
    cols = min(panels, 3)
    rows = math.ceil(panels / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.6 * rows), squeeze=False, constrained_layout=True)
    for ax in axes.flat[panels:]:
        ax.axis("off")
    return fig, list(axes.flat[:panels])


def finish_panel(ax, title: str, base: str) -> None:
    """Axis labels, a log scale for learning rates, grid and legend."""
    ax.set(xlabel="epoch", title=title)
    if base == "lr":  # log, but a schedule that ends at 0 keeps its last point: linear below the smallest rate
        values = [float(v) for line in ax.lines for v in line.get_ydata() if math.isfinite(float(v))]
        positive = [v for v in values if v > 0]
        if positive and min(values) <= 0:
            ax.set_yscale("symlog", linthresh=min(positive))
        elif positive:
            ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def plot_curves(history: list[dict], path: Path, labels: dict[str, str] | None = None) -> Path:
    """One panel per logged quantity per epoch, training against validation (the practice's figures);
    `labels` names the lines of columns whose prefix would mislead (a GAN's val_fid is against training images)."""
    labels = labels or {}
    groups = curve_groups(history)
    fig, axes = panel_grid(len(groups))
    for ax, (base, columns) in zip(axes, groups.items()):
        for column in columns:
            label, style = next((v for prefix, v in SPLIT_LABELS.items() if column.startswith(prefix)), (column, "-o"))
            label = labels.get(column, label)
            ax.plot(*logged_points(history, column), style, ms=3, label=label)
        finish_panel(ax, base, base)
    return save_figure(fig, path)


def plot_embedding(points: np.ndarray, labels: np.ndarray, label_names: list[str], path: Path, title: str) -> Path:
    """A 2-D scatter coloured by label (label i is named label_names[i]), with a legend (the thesis's Figure 5.1)."""
    fig, ax = plt.subplots(figsize=(8, 6.5))
    cmap = plt.get_cmap("tab20" if len(label_names) > 10 else "tab10")
    for c, name in enumerate(label_names):
        mask = labels == c
        if mask.any():
            ax.scatter(points[mask, 0], points[mask, 1], s=6, color=cmap(c % cmap.N), label=name, alpha=0.8)
    ax.set_title(title, fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])
    if len(label_names) <= 40:
        ax.legend(markerscale=3, fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    return save_figure(fig, Path(path))
