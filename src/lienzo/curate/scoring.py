"""`lienzo curate score`: a trained classifier over a folder → per-image top-k CSV and per-class
top-1/top-k/cross-entropy, computed as `lienzo evaluate` does (the run's test-time augmentation, precision and
memory layout).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path

import torch
import torch.nn.functional as F

from lienzo.curate.files import csv_text, safe_folder_name
from lienzo.data.images import IMAGE_SUFFIXES, load_image
from lienzo.errors import ConfigError, DataError
from lienzo.metrics.classification import target_rank
from lienzo.runs import atomic_write_text

log = logging.getLogger("lienzo")


def score(run: str | Path, folder: str | Path, out: str | Path, top_k: int = 5, batch_size: int = 256) -> dict:
    """Predict every image under folder/<class>/ (or a flat folder) with a run's best model, exactly as
    `lienzo evaluate` does (the run's trainer.tta, precision and channels_last); writes `out` (per image:
    path, true class, top-k classes and probabilities) and `out` with `.classes.csv` (per class: count, top1,
    top<k>, cross_entropy). Returns the per-class figures, keyed 'top1' and f'top{top_k}'."""
    from lienzo.evaluate import load_run

    if top_k < 1:
        raise ConfigError(f"top_k must be at least 1, got {top_k}")
    loaded = load_run(run)
    folder = Path(folder)
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"{folder}: no images")
    by_folder = {safe_folder_name(n): n for n in loaded.class_names}  # 'T-shirt/top' lives in folder 'T-shirt_top'
    rows, labelled = [], []  # labelled: (class index, rank of the true class, cross-entropy) per image
    for start in range(0, len(files), batch_size):
        chunk, logits = _score_batch(loaded, files[start : start + batch_size])
        order = logits.argsort(dim=1, descending=True, stable=True)[:, :top_k]  # ties broken as evaluate does
        probs = logits.softmax(1)
        for r, path in enumerate(chunk):
            true = by_folder.get(path.parent.name, path.parent.name) if path.parent != folder else ""
            row = {"path": str(path), "true": true}
            for k, c in enumerate(order[r].tolist()):
                row[f"class{k + 1}"] = loaded.class_names[c]
                row[f"prob{k + 1}"] = round(float(probs[r, c]), 6)
            rows.append(row)
            if true in loaded.class_names:
                target = torch.tensor([loaded.class_names.index(true)])
                labelled.append((int(target), int(target_rank(logits[r : r + 1], target)),
                                 float(F.cross_entropy(logits[r : r + 1], target))))
    summary = _per_class(labelled, loaded.class_names, top_k)
    out = Path(out)
    atomic_write_text(out, csv_text(rows))
    atomic_write_text(out.with_suffix(".classes.csv"),
                      csv_text([{"class": n, **v} for n, v in sorted(summary.items(), key=lambda kv: -kv[1]["top1"])]))
    return summary


def _score_batch(loaded, paths: list[Path]) -> tuple[list[Path], torch.Tensor]:
    """The readable files among `paths` and their logits (unreadable ones are logged and skipped)."""
    from lienzo.tasks.classify import run_logits

    channels, height, width = loaded.input_shape
    chunk, images = [], []
    for path in paths:
        try:
            images.append(load_image(path, channels, (height, width)))
            chunk.append(path)
        except DataError as err:
            log.warning("skipped %s", err)
    if not images:
        return [], torch.empty(0, len(loaded.class_names))
    # the run's own precision, TTA and layout, as evaluate and predict use them: the same numbers
    return chunk, run_logits(loaded, torch.stack(images))


def _per_class(labelled: list[tuple[int, int, float]], class_names: list[str], top_k: int) -> dict:
    """{class: {count, top1, top<k>, cross_entropy}} over (class index, rank, cross-entropy) triples."""
    grouped = defaultdict(list)
    for c, rank, loss in labelled:
        grouped[class_names[c]].append((rank, loss))
    return {name: {"count": len(items),
                   "top1": sum(rank == 0 for rank, _ in items) / len(items),
                   f"top{top_k}": sum(rank < top_k for rank, _ in items) / len(items),
                   "cross_entropy": sum(loss for _, loss in items) / len(items)}
            for name, items in sorted(grouped.items())}
