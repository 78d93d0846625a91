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
