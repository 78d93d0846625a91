"""`lienzo sample`: draw samples from a generate run into a grid, PNG files or an HDF5 file.

    images = sample_images("runs/gan_fashion", n=64, seed=0)     # float N×C×S×S in [-1, 1]
    sample("runs/gan_fashion", n=64, out="grid.png")             # or a folder/, or file.h5
"""

from __future__ import annotations

from pathlib import Path

import torch

from .errors import ConfigError
from .evaluate import load_run
from .runs import unique_path
from .tasks.generate import check_generate_run
from .tasks.generate_samples import check_out, interpolation_noise, write_samples


def sample_images(run: str | Path, n: int = 64, seed: int = 0, interpolate: bool = False) -> torch.Tensor:
    """n samples of a generate run's generator (its moving average when it has one), float N×C×S×S in [-1, 1]."""
    loaded = load_run(run, "best")
    check_generate_run(loaded, "sampling")
    module = loaded.module.eval()
    z = interpolation_noise(n, module.z_dim, seed) if interpolate else module.noise(n, seed, device="cpu")
    return module.sample(z)


def sample(run: str | Path, n: int = 64, seed: int = 0, out: str | Path | None = None,
           interpolate: bool = False) -> Path:
    """Write n samples: a grid (`.png`), one PNG per image (a folder; RGBA for RGB+mask) or an HDF5 file
    (`.h5`, the layout `data.name: hdf5` and `lienzo curate` read). Returns what was written; an existing
    file or non-empty folder is never overwritten."""
    if n < 1:
        raise ConfigError(f"--n: must be at least 1, got {n}")
    run = Path(run)
    if out is None:
        out = unique_path(run / "samples", f"samples-seed{seed}" + ("-interpolated" if interpolate else ""), ".png")
    out = Path(out)
    check_out(out)
    images = sample_images(run, n, seed, interpolate)
    write_samples(images, out, nrow=8 if interpolate else None)
    return out


