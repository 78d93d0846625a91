"""Tiny deterministic data in the real file formats, written by the tests themselves."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
from PIL import Image

from lienzo.data.idx import write_idx

FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


def tiny_images(n: int, size: int = 28, channels: int = 1, classes: int = 3, seed: int = 0):
    """Images whose class is visible: class c has a bright square in column band c."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % classes
    images = rng.integers(0, 40, size=(n, size, size, channels), dtype=np.uint8)
    band = size // classes
    for i, c in enumerate(labels):
        images[i, size // 4 : 3 * size // 4, c * band : (c + 1) * band] = 220
    return (images[..., 0] if channels == 1 else images), labels.astype(np.uint8)


def write_idx_dataset(root: Path, n_train: int = 60, n_test: int = 30, gz: bool = True, classes: int = 3) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    ext = ".gz" if gz else ""
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images, labels = tiny_images(n, classes=classes, seed=len(prefix))
        write_idx(root / f"{prefix}-images-idx3-ubyte{ext}", images)
        write_idx(root / f"{prefix}-labels-idx1-ubyte{ext}", labels)
    return root


def write_cifar100(root: Path, n_train: int = 40, n_test: int = 20) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    fine = [f"class{i}" for i in range(4)]
    coarse = ["big", "small"]
    for name, n in (("train", n_train), ("test", n_test)):
        images, labels = tiny_images(n, size=32, channels=3, classes=4)
        data = images.transpose(0, 3, 1, 2).reshape(n, -1)
        with open(root / name, "wb") as f:
            pickle.dump({b"data": data, b"fine_labels": labels.tolist(), b"coarse_labels": (labels // 2).tolist()}, f)
    with open(root / "meta", "wb") as f:
        pickle.dump({b"fine_label_names": [s.encode() for s in fine], b"coarse_label_names": [s.encode() for s in coarse]}, f)
    return root


def write_cifar10(root: Path, n_per_batch: int = 10) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    names = [f"c{i}" for i in range(10)]
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        images, labels = tiny_images(n_per_batch, size=32, channels=3, classes=10, seed=i)
        with open(root / name, "wb") as f:
            pickle.dump({b"data": images.transpose(0, 3, 1, 2).reshape(n_per_batch, -1), b"labels": labels.tolist()}, f)
    with open(root / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [n.encode() for n in names]}, f)
    return root


def write_png(path: Path, array: np.ndarray, mode: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode=mode).save(path)
    return path
