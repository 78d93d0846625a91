"""IDX files (MNIST, Fashion-MNIST, KMNIST), gzip-compressed or raw.

The format: 2 zero bytes, a type code, the number of dimensions, one big-endian int32 per dimension, data.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from lienzo.errors import DataError
from lienzo.data.arrays import ImageArrays, from_numpy

_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

FASHION_MNIST_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]
MNIST_CLASSES = [str(d) for d in range(10)]
KMNIST_CLASSES = ["o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"]

DEFAULT_ROOTS = {
    "fashion_mnist": "/usr/share/datasets/fashion-mnist",
    "mnist": "/usr/share/datasets/mnist",
    "kmnist": "/usr/share/datasets/kmnist",
}
CLASS_NAMES = {"fashion_mnist": FASHION_MNIST_CLASSES, "mnist": MNIST_CLASSES, "kmnist": KMNIST_CLASSES}
SPLIT_PREFIX = {"train": "train", "test": "t10k"}


def read_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file (.gz or raw) into an array, checking its magic number and its size."""
    path = Path(path)
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (OSError, EOFError) as err:
        raise DataError(f"{path}: cannot read ({err})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _TYPES:
        raise DataError(f"{path}: not an IDX file (wrong magic number {raw[:4].hex() or 'empty'})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise DataError(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_TYPES[raw[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataError(
            f"{path}: truncated or padded IDX data ({len(raw) - header} bytes, header says {expected} for {shape})"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


def _find(root: Path, stem: str) -> Path | None:
    for name in (f"{stem}.gz", stem, stem.replace("-idx", ".idx")):
        if (root / name).is_file():
            return root / name
    return None


def load_idx_split(root: str | Path, split: str, class_names: list[str], dataset: str = "idx") -> ImageArrays:
    """Read `<prefix>-images-idx3-ubyte[.gz]` and `<prefix>-labels-idx1-ubyte[.gz]` from root."""
    root = Path(root)
    prefix = SPLIT_PREFIX[split]
    wanted = [f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"]
    found = [_find(root, stem) for stem in wanted]
    if None in found:
        missing = wanted[found.index(None)]
        hint = ""
        if dataset == "fashion_mnist":
            hint = (
                "; install Debian's dataset-fashion-mnist (apt-get install dataset-fashion-mnist) "
                "or put the four IDX files (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
                "t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz) in a folder and set data.root"
            )
        raise DataError(f"{dataset}: {root / (missing + '.gz')} not found{hint}")
    images, labels = read_idx(found[0]), read_idx(found[1])
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DataError(f"{found[0]}: expected uint8 images N×H×W, got {images.dtype} {images.shape}")
    if labels.ndim != 1:
        raise DataError(f"{found[1]}: expected a vector of labels, got shape {labels.shape}")
    if len(images) != len(labels):
        raise DataError(f"{found[0]} has {len(images)} images but {found[1]} has {len(labels)} labels")
    if len(labels) and int(labels.max()) >= len(class_names):
        raise DataError(f"{found[1]}: label {int(labels.max())} but only {len(class_names)} classes")
    return from_numpy(images, labels, class_names)


def write_idx(path: str | Path, array: np.ndarray) -> None:
    """Write an array as IDX (gzip when the name ends in .gz); the inverse of read_idx."""
    codes = {np.dtype(v).str: k for k, v in _TYPES.items()}
    array = np.asarray(array)
    dtype = array.dtype.newbyteorder(">") if array.dtype.itemsize > 1 else array.dtype
    header = bytes([0, 0, codes[np.dtype(dtype).str], array.ndim])
    header += b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    data = header + array.astype(dtype).tobytes()
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(data)
