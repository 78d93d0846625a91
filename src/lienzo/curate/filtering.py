"""`lienzo curate filter`: keep images whose top-1 probability is at least a threshold, or whose class is
in a set (from a `curate score` CSV); or filter an HDF5 file (RGB, grey, or RGB+mask as `coco-masks` and
`mask-pairs` write): a classify run scores the image part and the samples it is sure enough of keep every
channel, in the same layout.
"""

from __future__ import annotations

import csv
import logging
import os
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from lienzo.curate.files import place, safe_folder_name
from lienzo.data.arrays import ImageArrays, to_channels
from lienzo.data.hdf5 import load_hdf5, write_hdf5
from lienzo.errors import ConfigError, DataError, RunError, did_you_mean

log = logging.getLogger("lienzo")


def filter_scored(scores: str | Path, out: str | Path, *, min_prob: float | None = None,
                  classes: list[str] | None = None, by: str = "predicted", copy: bool = False) -> dict[str, int]:
    """Keep images from a `score` CSV whose top-1 probability ≥ min_prob and/or whose class is in `classes`,
    into out/<class>/ (class = the predicted one, or the true one with by='true'). Returns counts."""
    path = Path(scores)
    if not path.is_file():
        raise DataError(f"{path}: scores file not found (made by 'lienzo curate score')")
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise RunError(f"{out} exists and is not empty; choose a new output folder")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or "prob1" not in rows[0]:
        raise DataError(f"{path}: not a 'lienzo curate score' CSV")
    counts: Counter = Counter()
    renamed = 0
    for row in rows:
        name = row["class1"] if by == "predicted" else row["true"]
        if min_prob is not None and float(row["prob1"]) < min_prob:
            continue
        if classes is not None and name not in classes:
            continue
        renamed += place(Path(row["path"]), out / safe_folder_name(name), copy).name != Path(row["path"]).name
        counts[name] += 1
    if not counts:
        raise DataError(f"{path}: no image passed the filter")
    log.info("kept %d of %d images (%d renamed: name taken)", sum(counts.values()), len(rows), renamed)
    return dict(sorted(counts.items()))


def _hdf5_parts(path: Path) -> dict[str | None, ImageArrays]:
    """{group: arrays} of an HDF5 file: its train/val/test groups, or {None: arrays} for a one-split file."""
    import h5py

    if not path.is_file():
        raise DataError(f"{path}: HDF5 file not found")
    try:
        with h5py.File(path, "r") as f:
            grouped = "train" in f and isinstance(f["train"], h5py.Group)
    except OSError as err:
        raise DataError(f"{path}: not a readable HDF5 file ({err})") from None
    if not grouped:
        return {None: load_hdf5(path, "train")}
    return {part: arrays for part in ("train", "val", "test") if (arrays := load_hdf5(path, part)) is not None}


def _image_part(images: torch.Tensor, path: Path) -> torch.Tensor:
    """The picture of N×C×H×W samples: all of grey (1) and RGB (3), without the mask of grey+mask (2) and
    RGB+mask (4)."""
    channels = images.shape[1]
    if channels not in (1, 2, 3, 4):
        raise DataError(f"{path}: images have {channels} channels; expected 1 or 3, or 2 or 4 with a mask last")
    return images[:, : 1 if channels == 2 else min(channels, 3)]


def fit_to_run(images: torch.Tensor, input_shape: tuple[int, int, int]) -> torch.Tensor:
    """uint8 N×C×H×W images as a run's input: channels converted (grey ↔ RGB), resized as `load_image`
    resizes files (area when shrinking, bilinear when enlarging), so arrays score as their files would."""
    channels, height, width = input_shape
    images = to_channels(images, channels)
    if tuple(images.shape[2:]) == (height, width):
        return images
    resample = Image.Resampling.BOX if images.shape[3] > width else Image.Resampling.BILINEAR
    resized = [np.asarray(Image.fromarray(image.permute(1, 2, 0).squeeze(2).numpy()).resize((width, height), resample))
               for image in images]
    return torch.from_numpy(np.stack(resized).reshape(len(images), height, width, channels)).permute(0, 3, 1, 2)


def _filter_by(by: str | None, file_names: list[str], run_names: list[str], path: Path) -> str:
    """'true' (the probability of each sample's own class) or 'predicted' (top-1): by=None picks 'true'
    when the run knows every class of the file, by name, else 'predicted' and says so."""
    if by not in (None, "true", "predicted"):
        raise ConfigError(f"by must be 'true' or 'predicted', got {by!r}")
    unknown = [name for name in file_names if name not in run_names]
    if by == "true" and unknown:
        raise DataError(f"{path}: class '{unknown[0]}' is not one of the run's classes"
                        f"{did_you_mean(unknown[0], run_names)}; filter by the top-1 probability (--by predicted)")
    if by is None and unknown:
        log.info("%s: class '%s' is not one of the run's classes: keeping by the top-1 probability", path, unknown[0])
    return by or ("predicted" if unknown else "true")


def _confidence(loaded, arrays: ImageArrays, by: str, path: Path) -> torch.Tensor:
    """Per sample, the run's probability of its class ('true', matched by name) or of its top-1 ('predicted')."""
    from lienzo.tasks.classify import run_logits

    images = fit_to_run(_image_part(arrays.images, path), loaded.input_shape)
    probs = run_logits(loaded, images).softmax(1)
    if by == "predicted":
        return probs.max(1).values
    column = torch.tensor([loaded.class_names.index(name) for name in arrays.class_names])
    return probs.gather(1, column[arrays.labels].unsqueeze(1)).squeeze(1)


def filter_hdf5(run: str | Path, data: str | Path, out: str | Path, *, min_prob: float = 0.75,
                by: str | None = None) -> dict:
    """Keep the samples of an HDF5 file that a classify run is at least `min_prob` sure of, into `out`:
    same layout and groups, every channel kept (a mask too), labels and class names unchanged.

    The run scores the image part (RGB of RGB+mask), converted and resized to its input as `curate score`
    reads files, with its own precision and test-time augmentation. by='true': the probability of the
    sample's own class, the file's class names matched to the run's by name; by='predicted': the top-1
    probability (the GAN thesis kept ≥ 0.75); None: 'true' when the run knows every class of the file.
    Returns {"counts": {class: kept}, "removed": {class: removed}} over the file's classes."""
    from lienzo.evaluate import load_run

    data, out = Path(data), Path(out)
    if not 0 <= min_prob <= 1:
        raise ConfigError(f"min_prob must be a probability in [0, 1], got {min_prob}")
    if out.suffix not in (".h5", ".hdf5"):
        raise ConfigError(f"{out}: the kept samples go to one HDF5 file; name it with .h5")
    if out.exists():
        raise RunError(f"{out} exists; choose a new output")
    parts = _hdf5_parts(data)
    loaded = load_run(run)
    if loaded.task != "classify":
        raise ConfigError(f"{run} is a {loaded.task} run; curate filter scores with a classify run")
    by = _filter_by(by, next(iter(parts.values())).class_names, loaded.class_names, data)
    kept, removed = Counter(), Counter()
    partial = out.with_name(out.name + ".partial")
    partial.unlink(missing_ok=True)
    try:
        for group, arrays in parts.items():
            keep = _confidence(loaded, arrays, by, data) >= min_prob
            for label, kept_it in zip(arrays.labels.tolist(), keep.tolist()):
                (kept if kept_it else removed)[arrays.class_names[label]] += 1
            write_hdf5(partial, arrays.images[keep].permute(0, 2, 3, 1).numpy(), arrays.labels[keep].numpy(),
                       arrays.class_names, group)
        if not kept:
            raise DataError(f"{data}: no sample passed the filter (the run is never {min_prob:g} sure)")
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)
    names = [n for n in next(iter(parts.values())).class_names if kept[n] or removed[n]]
    log.info("kept %d of %d samples (probability of the %s class >= %g)", sum(kept.values()),
             sum(kept.values()) + sum(removed.values()), "predicted" if by == "predicted" else "own", min_prob)
    return {"counts": {n: kept[n] for n in names}, "removed": {n: removed[n] for n in names}}
