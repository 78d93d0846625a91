"""Seeded stratified splits and per-channel statistics computed on the training split only."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np
import torch

from lienzo.errors import ConfigError, DataError


def stratified_split(labels: torch.Tensor, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (keep, held_out) with round(fraction * n_c) of each class c held out, chosen with `seed`.

    >>> keep, held = stratified_split(torch.tensor([0, 0, 1, 1]), 0.5, seed=0)
    >>> sorted(torch.tensor([0, 0, 1, 1])[held].tolist())
    [0, 1]
    """
    labels_np = labels.numpy()
    rng = np.random.default_rng(seed)
    keep, held = [], []
    for cls in np.unique(labels_np):
        members = np.flatnonzero(labels_np == cls)
        rng.shuffle(members)
        n_held = int(round(fraction * len(members)))
        if fraction > 0 and len(members) > 1:
            n_held = min(max(n_held, 1), len(members) - 1)  # every class in both parts when it can be
        held.append(members[:n_held])
        keep.append(members[n_held:])
    return torch.from_numpy(np.sort(np.concatenate(keep))), torch.from_numpy(np.sort(np.concatenate(held)))


def channel_stats(images: torch.Tensor, chunk: int = 8192) -> tuple[list[float], list[float]]:
    """Per-channel mean and standard deviation of uint8 N×C×H×W images, on the [0, 1] scale."""
    channels = images.shape[1]
    total = torch.zeros(channels, dtype=torch.float64)
    total_sq = torch.zeros(channels, dtype=torch.float64)
    for start in range(0, len(images), chunk):
        block = images[start : start + chunk].to(torch.float64) / 255.0
        total += block.sum(dim=(0, 2, 3))
        total_sq += (block * block).sum(dim=(0, 2, 3))
    count = images.shape[0] * images.shape[2] * images.shape[3]
    mean = total / count
    std = (total_sq / count - mean * mean).clamp_min(1e-12).sqrt()
    return mean.tolist(), std.tolist()


def _holdout_counts(n: int, val_fraction: float, test_fraction: float) -> tuple[int, int]:
    """Held-out image counts: rounded, at least one when the fraction is above 0, leaving training images."""
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0 <= value < 1:
            raise ConfigError(f"{name}={value}: must be in [0, 1)")
    if val_fraction + test_fraction >= 1:
        raise ConfigError(f"val_fraction + test_fraction = {val_fraction + test_fraction}: must be below 1")
    n_val = max(round(n * val_fraction), 1 if val_fraction > 0 else 0)
    n_test = max(round(n * test_fraction), 1 if test_fraction > 0 else 0)
    if n_val + n_test >= n:
        raise DataError(f"{n} image(s) are too few to hold out {n_val} val and {n_test} test images; add a split column")
    return n_val, n_test


def holdout_splits(files: Iterable[str], val_fraction: float, test_fraction: float, seed: int) -> dict[str, str]:
    """{file: split}: files ordered by a seeded hash of their name, the first test, the next val, the rest train.

    The order depends on the names only, so shuffling the rows of a file never moves an image to another split.

    >>> splits = holdout_splits(["a.jpg", "b.jpg", "c.jpg"], 0.34, 0.34, seed=0)
    >>> splits == holdout_splits(["c.jpg", "b.jpg", "a.jpg"], 0.34, 0.34, seed=0), sorted(splits.values())
    (True, ['test', 'train', 'val'])
    """
    unique = sorted(set(files))
    n_val, n_test = _holdout_counts(len(unique), val_fraction, test_fraction)
    ranked = sorted(unique, key=lambda f: (hashlib.sha256(f"{seed}\0{f}".encode()).hexdigest(), f))
    return {file: "test" if i < n_test else "val" if i < n_test + n_val else "train" for i, file in enumerate(ranked)}
