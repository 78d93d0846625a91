"""What a generate run shows and hands out: sample grids (RGB+mask runs as the thesis drew them), samples
as files (`lienzo sample`), IS/FID of a run against its real data, and its report sections.

    save_sample_grids(images, run / "plots", "samples_step0001000")   # images: float N×C×S×S in [-1, 1]
    write_samples(images, Path("grid.png"))                            # or a folder/, or file.h5
    dtype = to_evaluation_device(module, cfg, info)                    # a loaded run's module to the GPU if any
    images = draw_samples(module, z, dtype)                            # in the run's precision
(`lienzo.tasks.generate.sample` draws them from a run.)
"""

from __future__ import annotations

import logging
import math
import os
import shutil
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision.utils import make_grid

from lienzo.errors import ConfigError, RunError
from lienzo.metrics.generative import to_uint8
from lienzo.report.content import Report, ReportSection, Table, Text

log = logging.getLogger("lienzo")

MASK_VIEWS = ("", "_mask", "_masked")  # RGB; the mask as transparency over a checkerboard; RGB with the mask at 50 %


# -- pictures ------------------------------------------------------------------------------------------

def checkerboard(height: int, width: int, square: int = 4) -> torch.Tensor:
    """A light grey checkerboard, 3×H×W uint8 in [0, 255]: what transparent pixels are shown over."""
    ys, xs = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    light = ((ys // square + xs // square) % 2 == 0)
    return torch.where(light, 230, 190).to(torch.uint8).expand(3, height, width)


def mask_views(images: torch.Tensor) -> list[torch.Tensor]:
    """The thesis's three pictures of RGB+mask samples (uint8 N×4×H×W): the RGB part; RGB with the mask
    as transparency over a checkerboard; RGB with the mask applied at 50 % (outside it, half as bright)."""
    rgb, alpha = images[:, :3].float(), images[:, 3:4].float() / 255
    board = checkerboard(*images.shape[-2:]).float()
    transparent = rgb * alpha + board * (1 - alpha)
    masked = rgb * (0.5 + 0.5 * alpha)
    return [images[:, :3], transparent.round().to(torch.uint8), masked.round().to(torch.uint8)]


def grid_image(images: torch.Tensor, nrow: int | None = None) -> Image.Image:
    """uint8 N×C×H×W (C = 1 or 3) → one PIL image of the samples in a near-square grid."""
    nrow = nrow or max(1, math.ceil(math.sqrt(len(images))))
    grid = make_grid(images, nrow=nrow, padding=2, pad_value=255)
    array = grid.permute(1, 2, 0).numpy()
    return Image.fromarray(array[..., 0] if images.shape[1] == 1 else array)


def _save_png(image: Image.Image, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    image.save(tmp, format="PNG")
    os.replace(tmp, path)
    return path


def grid_paths(out: Path, channels: int) -> list[Path]:
    """The files a grid of `channels`-channel samples goes to: `out`, and for RGB+mask samples its `_mask`
    and `_masked` siblings, each with out's suffix as given (grid.PNG → grid_mask.PNG)."""
    views = MASK_VIEWS if channels == 4 else MASK_VIEWS[:1]
    return [out.with_name(f"{out.stem}{view}{out.suffix}") for view in views]


def save_grids(images: torch.Tensor, out: Path, nrow: int | None = None) -> list[Path]:
    """Grids of samples in [-1, 1] as `out` (a PNG of that exact name); RGB+mask samples also as its
    `_mask` and `_masked` siblings (grid_paths). Images of other channel counts show their first channel.
    Every picture is drawn before the first file is written, and each file is written atomically."""
    pixels = to_uint8(images.detach().cpu())
    channels = pixels.shape[1]
    if channels == 4:
        views = mask_views(pixels)
    else:
        views = [pixels if channels in (1, 3) else pixels[:, :1]]
    pictures = [grid_image(view, nrow) for view in views]
    return [_save_png(picture, path) for picture, path in zip(pictures, grid_paths(out, channels))]


def save_sample_grids(images: torch.Tensor, folder: Path, stem: str, nrow: int | None = None) -> list[Path]:
    """save_grids as `folder/stem.png` (and stem_mask.png, stem_masked.png): the grids of a run's plots/."""
    return save_grids(images, Path(folder) / f"{stem}.png", nrow)


# -- samples as files ------------------------------------------------------------------------------------

def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between noise vectors a and b (rows) at fractions t: what Gaussian noise
    looks like along the way (a straight line would pass through improbably short vectors)."""
    a_n, b_n = a / a.norm(dim=-1, keepdim=True), b / b.norm(dim=-1, keepdim=True)
    omega = torch.acos((a_n * b_n).sum(-1, keepdim=True).clamp(-1 + 1e-7, 1 - 1e-7))
    so = torch.sin(omega)
    return (torch.sin((1 - t) * omega) / so) * a + (torch.sin(t * omega) / so) * b


def interpolation_noise(n: int, z_dim: int, seed: int, steps: int = 8) -> torch.Tensor:
    """n noise vectors in rows of `steps`: each row walks from one random vector to another."""
    rows = max(1, math.ceil(n / steps))
    generator = torch.Generator().manual_seed(seed)
    ends = torch.randn(2, rows, 1, z_dim, generator=generator)
    t = torch.linspace(0, 1, steps).view(1, steps, 1)
    return slerp(ends[0], ends[1], t).reshape(rows * steps, z_dim)[:n]


def check_out(out: Path, channels: int) -> None:
    """Every file `write_samples` would write for `channels`-channel samples is new (a grid's `_mask` and
    `_masked` siblings too), a folder is new or empty (lienzo never overwrites samples), and the folder they
    go to exists or can be made (missing folders are made, as every lienzo --out does)."""
    kind = out_kind(out)
    _check_can_make(out.parent, out)
    paths = grid_paths(out, channels) if kind == "grid" else [out]
    for path in paths:
        if kind != "folder" and (path.exists() or path.is_symlink()):
            raise RunError(f"{path} exists: lienzo never overwrites samples (choose another --out)")
    if kind == "folder" and out.is_dir() and any(out.iterdir()):
        raise RunError(f"{out} is a folder that is not empty: lienzo never overwrites samples")
    if kind == "folder" and (out.exists() or out.is_symlink()) and not out.is_dir():
        raise RunError(f"{out} exists and is no folder: lienzo never overwrites samples (choose another --out)")


def _check_can_make(folder: Path, out: Path) -> None:
    """`folder` exists or can be made: its nearest existing ancestor is a folder this process may write in."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise RunError(f"cannot write {out}: {existing} is a file, not a folder (choose another --out)")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise RunError(f"cannot write {out}: no permission to create files in {existing} (choose another --out)")


def write_samples(images: torch.Tensor, out: Path, nrow: int | None = None) -> list[Path]:
    """Samples in [-1, 1] as a grid (`.png`), one PNG each (a folder; RGBA for RGB+mask) or an HDF5 file,
    under the exact name given. Returns the files (the folder) written."""
    out = Path(out)
    check_out(out, images.shape[1])
    kind = out_kind(out)
    try:
        if kind == "grid":
            written = save_grids(images, out, nrow)
            log.info("wrote %s", ", ".join(str(p) for p in written))
            return written
        if kind == "folder":
            _save_folder(to_uint8(images.detach().cpu()), out)
        else:
            _save_h5(to_uint8(images.detach().cpu()), out)
    except OSError as err:  # what check_out cannot foresee: a full disk, a read-only file system
        raise RunError(f"cannot write {out}: {err.strerror or err}") from None
    return [out]


def out_kind(out: Path) -> str:
    """'grid' (.png, any case), 'h5' (.h5/.hdf5) or 'folder' (no suffix, or an existing folder)."""
    suffix = out.suffix.lower()
    if suffix == ".png":
        return "grid"
    if suffix in (".h5", ".hdf5"):
        return "h5"
    if suffix and not out.is_dir():
        raise ConfigError(f"--out {out}: a .png (one grid), a .h5 file or a folder")
    return "folder"


def _save_folder(pixels: torch.Tensor, folder: Path) -> None:
    """One PNG per sample, written into a hidden folder beside `folder` and renamed to it when all are
    there: a failure leaves no half-filled folder (rename replaces an empty folder, never a full one)."""
    mode = {1: "L", 3: "RGB", 4: "RGBA"}.get(pixels.shape[1])
    if mode is None:
        raise ConfigError(f"{pixels.shape[1]}-channel samples have no PNG form; write a .h5 file instead")
    folder.parent.mkdir(parents=True, exist_ok=True)
    partial = folder.with_name(f".{folder.name}.partial-{os.getpid()}")
    partial.mkdir()
    try:
        width = len(str(len(pixels) - 1))
        for i, image in enumerate(pixels.permute(0, 2, 3, 1).numpy()):
            Image.fromarray(image[..., 0] if mode == "L" else image, mode).save(partial / f"sample_{i:0{width}d}.png",
                                                                                 format="PNG")
        os.replace(partial, folder)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    log.info("wrote %d PNG files to %s", len(pixels), folder)


def _save_h5(pixels: torch.Tensor, path: Path) -> None:
    from lienzo.data.hdf5 import write_hdf5

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    write_hdf5(tmp, pixels.permute(0, 2, 3, 1).numpy(), np.zeros(len(pixels), dtype=np.int64), ["generated"])
    os.replace(tmp, path)
    log.info("wrote %d samples to %s", len(pixels), path)


# -- metrics ---------------------------------------------------------------------------------------------

def evaluation_device(cfg) -> torch.device:
    """Where a run's samples are drawn and scored outside training: the GPU when `trainer.accelerator`
    resolves to one here (50,000 samples through Inception belong there), else the CPU."""
    from lienzo.hardware import resolve_accelerator

    return torch.device("cuda" if resolve_accelerator(cfg.trainer.accelerator) == "gpu" else "cpu")


def sampling_dtype(module, cfg, info: dict, device: torch.device) -> torch.dtype | None:
    """The autocast dtype the run trained its generator in, as `trainer.precision` resolves on `device` for
    this model (what the Trainer would choose there); None is fp32."""
    from lienzo.hardware import autocast_dtype, resolve_precision

    accelerator = "gpu" if device.type == "cuda" else "cpu"
    return autocast_dtype(resolve_precision(cfg.trainer.precision, accelerator, precision_macs(module, info)))


def precision_macs(module, info: dict) -> float | None:
    """The work of one image for precision auto (Generate.precision_macs): the critic does most of a step's."""
    from lienzo.models.summary import macs_for_precision

    return macs_for_precision(module.critic, info["input_shape"])


def to_evaluation_device(module, cfg, info: dict) -> torch.dtype | None:
    """Move a loaded run's module (load_run gives it on the CPU) to evaluation_device; returns the autocast
    dtype to sample in (sampling_dtype)."""
    device = evaluation_device(cfg)
    module.to(device)
    return sampling_dtype(module, cfg, info, device)


def draw_samples(module, z: torch.Tensor, dtype: torch.dtype | None) -> torch.Tensor:
    """module.sample(z) on the module's device, under autocast `dtype` (None: fp32); float32 images."""
    device = module.device
    with torch.autocast(device.type, dtype=dtype) if dtype is not None else nullcontext():
        return module.sample(z.to(device))


def _fake_batches(module, n: int, seed: int, dtype: torch.dtype | None, batch_size: int = 500):
    """Samples in batches (50,000 RGB+mask samples at 64 px would be 3 GB at once). Each batch is drawn
    before it is yielded, so the scorer that consumes it runs outside the sampling autocast."""
    z = module.noise(n, seed, device="cpu")
    for chunk in z.split(batch_size):
        yield draw_samples(module, chunk, dtype)


def score_run(loaded, data, cfg) -> dict:
    """IS, FID and KID of `gan.eval_samples` samples against the test split (the training split when there
    is none), with the features of `gan.scorer`; the same figures for the real training images against the
    test split are the bound (what a perfect generator would score). RGB+mask samples are scored on RGB."""
    g = cfg.gan
    if not g.scorer:
        return {"scorer": None, "samples": 0}
    from lienzo.metrics.generative import generative_metrics, make_scorer, score_real, seeded_subset

    data.setup("test")
    dtype = to_evaluation_device(loaded.module, cfg, loaded.info)
    scorer = make_scorer(g.scorer, device=loaded.module.device)
    train, test = data.split_images("train"), data.split_images("test")
    reference = test if test is not None else train
    n = g.eval_samples
    log.info("scoring %d samples with %s features against %d real images", n, scorer.name, min(n, len(reference)))
    # seeded random subsets, not the first n: a file sorted by class would give a reference of a few classes
    reference, train = seeded_subset(reference, n, cfg.run.seed + 4), seeded_subset(train, n, cfg.run.seed + 5)
    real_features, _ = score_real(scorer, reference)  # uint8 goes in as it is
    fake = generative_metrics(scorer, _fake_batches(loaded.module, n, cfg.run.seed + 2, dtype), real_features,
                              splits=g.is_splits)
    result = {"scorer": scorer.name, "samples": n, "reference": "test" if test is not None else "train",
              "reference_images": int(min(n, len(reference))), **{k: v for k, v in fake.items() if k != "count"}}
    if test is not None:
        bound = generative_metrics(scorer, list(train.split(500)), real_features, splits=g.is_splits)
        result.update({f"real_{k}": v for k, v in bound.items() if k != "count"})
    else:
        own = generative_metrics(scorer, list(reference.split(500)), None, splits=g.is_splits)
        result.update(real_is_mean=own["is_mean"], real_is_std=own["is_std"], real_fid=None)
    return result


# -- report ----------------------------------------------------------------------------------------------

def _fmt(value, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _grids_over_time(plots: Path) -> list[Path]:
    return sorted(p for p in plots.glob("samples_step*.png") if not p.stem.endswith(("_mask", "_masked")))


def strip_positions(count: int, columns: int) -> list[int]:
    """Indices of min(columns, count) of `count` grids, evenly spread: always the first and the latest."""
    k = min(columns, count)
    return [round(i * (count - 1) / max(k - 1, 1)) for i in range(k)]


def samples_strip(plots: Path, path: Path, columns: int = 6) -> Path | None:
    """Up to `columns` of the grids saved during training, evenly spread, side by side: how the samples grew."""
    grids = _grids_over_time(plots)
    if not grids:
        return None
    picks = [grids[i] for i in strip_positions(len(grids), columns)]
    import matplotlib.pyplot as plt

    from lienzo.report.plots import save_figure

    fig, axes = plt.subplots(1, len(picks), figsize=(2.6 * len(picks), 2.9), squeeze=False)
    for ax, grid in zip(axes[0], picks):
        ax.imshow(Image.open(grid), cmap="gray")
        ax.set_title(f"step {int(grid.stem.removeprefix('samples_step'))}", fontsize=9)
        ax.axis("off")
    return save_figure(fig, path)


def report_sections(run_dir: Path, cfg, metrics: dict) -> Report:
    test = metrics.get("test") or {}
    plots = run_dir / "plots"
    report = Report(subtitle=f"{cfg.model.arch} ({cfg.gan.loss}), {metrics.get('input_shape')} images, "
                             f"{metrics.get('parameters', 0) / 1e6:.1f} M parameters")
    if test.get("fid") is not None:
        report.cards += [("FID", _fmt(test["fid"])), ("IS", _fmt(test["is_mean"])), ("features", str(test["scorer"]))]
        rows = [["generated", _fmt(test["is_mean"]) + " ± " + _fmt(test["is_std"]), _fmt(test["fid"]),
                 _fmt(test.get("kid_mean"), 4)],
                ["real training images (the bound)", _fmt(test.get("real_is_mean")) + " ± " + _fmt(test.get("real_is_std")),
                 _fmt(test.get("real_fid")), _fmt(test.get("real_kid_mean"), 4)]]
        report.headline = ReportSection(
            f"Inception Score and FID ({test['samples']} samples, {test['scorer']} features, "
            f"against the {test['reference']} split)", table=Table(["", "IS", "FID", "KID"], rows))
    else:
        report.headline = ReportSection("Metrics", text=[[
            "No IS/FID: set ", Text("gan.scorer", "code"), " to a lienzo classifier run (domain features) or ",
            Text("inception", "code"), " with its weights file, then ", Text("lienzo evaluate RUN", "code"), "."]])
    grids = _grids_over_time(plots)
    if grids:
        last = grids[-1].stem
        views = [f"{last}{suffix}.png" for suffix in MASK_VIEWS if (plots / f"{last}{suffix}.png").is_file()]
        report.sections.append(ReportSection(f"Samples after {int(last.removeprefix('samples_step'))} generator steps"
                                             + (" (RGB; mask as transparency; mask applied at 50 %)" if len(views) > 1 else ""),
                                             views))
        strip = samples_strip(plots, plots / "samples_over_training.png")
        if strip is not None:
            report.sections.append(ReportSection("Samples over training (fixed noise)", [strip.name]))
    return report
