"""Named data sources: `data.name` → a reader returning the train and test splits as ImageArrays."""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError, DataError, did_you_mean
from .arrays import ImageArrays
from .cifar import load_cifar
from .cub import load_cub
from .folders import load_folder
from .hdf5 import load_hdf5
from .idx import CLASS_NAMES, DEFAULT_ROOTS, load_idx_split


def _image_size(data_cfg) -> tuple[int, int] | None:
    size = data_cfg.image_size
    if size is None:
        return None
    return (size[0], size[0]) if len(size) == 1 else (size[0], size[1])


def _idx(name):
    def load(data_cfg):
        root = data_cfg.root or DEFAULT_ROOTS.get(name)
        if root is None:
            raise ConfigError("data.root: the IDX source needs a folder")
        classes = CLASS_NAMES.get(name) or [str(i) for i in range(10)]
        return tuple(load_idx_split(root, split, classes, name) for split in ("train", "test"))

    return load


def _cifar(num_classes):
    def load(data_cfg):
        if data_cfg.root is None:
            raise ConfigError(f"data.root: set it to the extracted cifar-{num_classes}-python folder")
        return tuple(load_cifar(data_cfg.root, split, num_classes, data_cfg.label_mode) for split in ("train", "test"))

    return load


def _folder(data_cfg):
    if data_cfg.root is None:
        raise ConfigError("data.root: set it to a folder of <class>/<image> sub-folders")
    root = Path(data_cfg.root)
    kwargs = dict(image_size=_image_size(data_cfg), channels=data_cfg.channels, strict=data_cfg.strict)
    if (root / "train").is_dir():
        train = load_folder(root / "train", **kwargs)
        kwargs.update(image_size=train.shape[1:], channels=train.shape[0])
        test = load_folder(root / "test", class_names=train.class_names, **kwargs) if (root / "test").is_dir() else None
        return train, test
    return load_folder(root, **kwargs), None


def _cub(data_cfg):
    if data_cfg.root is None:
        raise ConfigError("data.root: set it to the CUB_200_2011 folder (images.txt, classes.txt, images/ ...)")
    size = _image_size(data_cfg) or (224, 224)
    channels = data_cfg.channels or 3
    return load_cub(data_cfg.root, "train", size, channels), load_cub(data_cfg.root, "test", size, channels)


def _hdf5(data_cfg):
    if data_cfg.root is None:
        raise ConfigError("data.root: set it to the .h5 file")
    return load_hdf5(data_cfg.root, "train"), load_hdf5(data_cfg.root, "test")


SOURCES = {
    "fashion_mnist": _idx("fashion_mnist"),
    "mnist": _idx("mnist"),
    "kmnist": _idx("kmnist"),
    "idx": _idx("idx"),
    "cifar10": _cifar(10),
    "cifar100": _cifar(100),
    "folder": _folder,
    "hdf5": _hdf5,
    "cub": _cub,
}


def load_source(data_cfg) -> tuple[ImageArrays, ImageArrays | None]:
    """Read the train and (when the source has one) test split named by `data.name`."""
    if data_cfg.name not in SOURCES:
        raise ConfigError(f"data.name: unknown source '{data_cfg.name}'{did_you_mean(data_cfg.name, SOURCES)}; "
                          f"known: {', '.join(SOURCES)}")
    train, test = SOURCES[data_cfg.name](data_cfg)
    if len(train) == 0:
        raise DataError(f"{data_cfg.name}: the training split is empty")
    if data_cfg.channels:
        train = train.to_channels(data_cfg.channels)
        test = test.to_channels(data_cfg.channels) if test is not None else None
    if data_cfg.classes:
        train = train.select_classes(data_cfg.classes)
        test = test.select_classes(data_cfg.classes) if test is not None else None
    return train, test
