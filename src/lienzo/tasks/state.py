"""What a task's checkpoint carries besides its networks, so that a resumed run is the uninterrupted one.

    checkpoint["rng_states"] = capture_rng()      # in on_save_checkpoint
    restore_rng(checkpoint.get("rng_states"))     # in on_load_checkpoint
"""

from __future__ import annotations

import random

import numpy as np
import torch


def capture_rng() -> dict:
    """The global generators (torch, CUDA, numpy, Python) as plain tensors, ints and tuples, so the
    checkpoint stays loadable with weights_only=True. Every rank seeds them alike: rank 0's are everybody's."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {
        "torch": torch.get_rng_state(), "python": random.getstate(),
        "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(gauss)),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def restore_rng(states: dict | None) -> None:
    """Put the generators back where `capture_rng` found them (nothing to do for checkpoints without)."""
    if not states:
        return
    torch.set_rng_state(states["torch"])
    kind, keys, pos, has_gauss, gauss = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    random.setstate(states["python"])
    if states["cuda"] and torch.cuda.is_available() and len(states["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(states["cuda"])


def complete_saved_epoch(checkpoint: dict) -> None:
    """Checkpoints are written at an epoch's end, before Lightning counts the epoch complete. For runs
    bounded by max_epochs Lightning completes it on resume; for runs bounded by trainer.max_steps it does
    not, and would re-enter the finished epoch for one step. Count it complete, as for max_epochs runs
    (harmless for those: it already is)."""
    loop = checkpoint.get("loops", {}).get("fit_loop", {})
    if "epoch_progress" in loop and "epoch_loop.batch_progress" in loop:
        loop["epoch_progress"]["current"]["completed"] = loop["epoch_progress"]["current"]["processed"]
        batches = loop["epoch_loop.batch_progress"]
        batches["current"] = dict.fromkeys(batches["current"], 0)  # the next epoch starts at its first batch
        batches["is_last_batch"] = False
