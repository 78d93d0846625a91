"""CIFAR-10 and CIFAR-100 python pickles (`data_batch_1..5`/`test_batch`, `train`/`test`, `batches.meta`/`meta`)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from lienzo.errors import DataError
from lienzo.data.arrays import ImageArrays, from_numpy


def _unpickle(path: Path) -> dict:
    if not path.is_file():
        raise DataError(f"{path}: file not found (CIFAR python version: extract cifar-*-python.tar.gz and set data.root)")
    try:
        with open(path, "rb") as f:
            data = pickle.load(f, encoding="bytes")
    except Exception as err:  # pickle raises many types on bad input
        raise DataError(f"{path}: not a CIFAR pickle ({type(err).__name__}: {err})") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: not a CIFAR pickle (expected a dict, got {type(data).__name__})")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in data.items()}


def _names(values) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


def _batch(path: Path, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    data = _unpickle(path)
    if "data" not in data or label_key not in data:
        raise DataError(f"{path}: malformed CIFAR pickle (needs 'data' and '{label_key}', has {sorted(data)})")
    images = np.asarray(data["data"])
    labels = np.asarray(data[label_key])
    if images.dtype != np.uint8 or images.ndim != 2 or images.shape[1] != 3072:
        raise DataError(f"{path}: malformed CIFAR pickle ('data' must be uint8 N×3072, got {images.dtype} {images.shape})")
    if len(images) != len(labels):
        raise DataError(f"{path}: {len(images)} images but {len(labels)} labels")
    return images.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def load_cifar(root: str | Path, split: str, num_classes: int, label_mode: str = "fine") -> ImageArrays:
    """Read one split of CIFAR-10 (num_classes=10) or CIFAR-100 (fine or coarse labels)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"cifar{num_classes}: folder {root} not found (set data.root to the extracted cifar-{num_classes}-python folder)")
    if num_classes == 10:
        names = _names(_unpickle(root / "batches.meta").get("label_names", []))
        files = [root / f"data_batch_{i}" for i in range(1, 6)] if split == "train" else [root / "test_batch"]
        label_key = "labels"
    else:
        meta = _unpickle(root / "meta")
        names = _names(meta.get(f"{label_mode}_label_names", []))
        files = [root / ("train" if split == "train" else "test")]
        label_key = f"{label_mode}_labels"
    if not names:
        raise DataError(f"{root}: the CIFAR meta file has no label names")
    parts = [_batch(f, label_key) for f in files]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    if len(labels) and int(labels.max()) >= len(names):
        raise DataError(f"{root}: label {int(labels.max())} but the meta file names {len(names)} classes")
    return from_numpy(images, labels, names)
