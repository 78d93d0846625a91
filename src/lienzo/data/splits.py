"""Seeded stratified splits and per-channel statistics computed on the training split only."""

from __future__ import annotations

import numpy as np
import torch


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
