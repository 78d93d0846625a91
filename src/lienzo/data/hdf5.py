"""HDF5 arrays: `images` (uint8 N×H×W×C or N×H×W), `labels` (N), optional `class_names`.

A file may hold one split at the top level, or groups `train`, `test` and `val` each holding those datasets
(`val`, when there, is the validation split: `lienzo curate split` writes all three).
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from lienzo.errors import DataError
from lienzo.data.arrays import ImageArrays, from_numpy


def _decode(values) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


def read_hdf5_group(group: h5py.Group, where: str) -> ImageArrays:
    for key in ("images", "labels"):
        if key not in group:
            raise DataError(f"{where}: no '{key}' dataset (has {sorted(group.keys())})")
    images = group["images"][()]  # [()] reads the dataset (np.asarray would go through its legacy __array__)
    labels = group["labels"][()]
    if images.dtype != np.uint8 or images.ndim not in (3, 4):
        raise DataError(f"{where}: 'images' must be uint8 N×H×W×C, got {images.dtype} {images.shape}")
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"{where}: 'labels' must be a vector of integers, got {labels.dtype} {labels.shape}")
    if len(images) != len(labels):
        raise DataError(f"{where}: {len(images)} images but {len(labels)} labels")
    if "class_names" in group:
        names = _decode(group["class_names"][()])
    elif "class_names" in group.attrs:
        names = _decode(group.attrs["class_names"])
    else:
        names = [str(i) for i in range(int(labels.max()) + 1 if len(labels) else 0)]
    if len(labels) and (labels.min() < 0 or labels.max() >= len(names)):
        raise DataError(f"{where}: labels range {labels.min()}..{labels.max()} does not fit {len(names)} class names")
    return from_numpy(images, labels, names)


def load_hdf5(path: str | Path, split: str) -> ImageArrays | None:
    """Read a split ('train', 'test' or 'val'); returns None for a split the file does not hold."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: HDF5 file not found")
    try:
        with h5py.File(path, "r") as f:
            if "train" in f and isinstance(f["train"], h5py.Group):
                if split not in f:
                    return None
                return read_hdf5_group(f[split], f"{path}:{split}")
            return read_hdf5_group(f, str(path)) if split == "train" else None
    except OSError as err:
        raise DataError(f"{path}: not a readable HDF5 file ({err})") from None


def write_hdf5(path: str | Path, images: np.ndarray, labels: np.ndarray, class_names: list[str], group: str | None = None) -> None:
    """Write images/labels/class_names (the layout load_hdf5 reads)."""
    with h5py.File(path, "a") as f:
        target = f.require_group(group) if group else f
        target.create_dataset("images", data=np.asarray(images, dtype=np.uint8), compression="gzip", chunks=True)
        target.create_dataset("labels", data=np.asarray(labels, dtype=np.int64))
        target.create_dataset("class_names", data=np.array(class_names, dtype=h5py.string_dtype()))
