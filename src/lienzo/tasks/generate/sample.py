"""`lienzo sample`: draw samples from a generate run into a grid, PNG files or an HDF5 file.

    images = sample_images("runs/gan_fashion", n=64, seed=0)     # float N×C×S×S in [-1, 1], on the CPU
    sample("runs/gan_fashion", n=64, out="grid.png")             # or a folder/, or file.h5

Samples are drawn where and as the run trained: on the GPU when its `trainer.accelerator` resolves to one
here, under its precision (bf16 autocast where `trainer.precision` resolves to it).
"""

from __future__ import annotations

from pathlib import Path

import torch

from lienzo.errors import ConfigError
from lienzo.evaluate import LoadedRun, load_run
from lienzo.runs import unique_path
from lienzo.tasks.generate import check_generate_run
from lienzo.tasks.generate.samples import (check_out, draw_samples, interpolation_noise, out_kind, to_evaluation_device,
                                     write_samples)


def sample_images(run: str | Path, n: int = 64, seed: int = 0, interpolate: bool = False) -> torch.Tensor:
    """n samples of a generate run's generator (its moving average when it has one), float N×C×S×S in [-1, 1]."""
    return _draw(_load(run), n, seed, interpolate)


def sample(run: str | Path, n: int = 64, seed: int = 0, out: str | Path | None = None,
           interpolate: bool = False) -> Path:
    """Write n samples: a grid (`.png`), one PNG per image (a folder; RGBA for RGB+mask) or an HDF5 file
    (`.h5`, the layout `data.name: hdf5` and `lienzo curate` read), under the exact name given. Returns
    `out`; an existing file (a grid's `_mask`/`_masked` siblings too) or non-empty folder is never overwritten."""
    if n < 1:
        raise ConfigError(f"--n: must be at least 1, got {n}")
    run = Path(run)
    if out is None:
        out = unique_path(run / "samples", f"samples-seed{seed}" + ("-interpolated" if interpolate else ""), ".png")
    out = Path(out)
    out_kind(out)  # a bad --out is said before the run is read
    loaded = _load(run)
    check_out(out, loaded.input_shape[0])  # before minutes of sampling, not after
    write_samples(_draw(loaded, n, seed, interpolate), out, nrow=8 if interpolate else None)
    return out


def _load(run: str | Path) -> LoadedRun:
    loaded = load_run(run, "best")
    check_generate_run(loaded, "sampling")
    return loaded


def _draw(loaded: LoadedRun, n: int, seed: int, interpolate: bool) -> torch.Tensor:
    module = loaded.module.eval()
    dtype = to_evaluation_device(module, loaded.config, loaded.info)
    z = interpolation_noise(n, module.z_dim, seed) if interpolate else module.noise(n, seed, device="cpu")
    return draw_samples(module, z, dtype).cpu()
