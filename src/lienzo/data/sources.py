"""Named data sources: `data.name` → a reader returning the train, test and (if the data has one) val splits."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import NamedTuple

from lienzo.errors import ConfigError, DataError, did_you_mean
from lienzo.data.arrays import ImageArrays
from lienzo.data.cifar import load_cifar
from lienzo.data.cub import load_cub
from lienzo.data.folders import load_folder
from lienzo.data.hdf5 import load_hdf5
from lienzo.data.idx import CLASS_NAMES, DEFAULT_ROOTS, load_idx_split

log = logging.getLogger("lienzo")


class Splits(NamedTuple):
    """What a source holds: a training split, and a test and a validation split when it has them."""

    train: ImageArrays
    test: ImageArrays | None
    val: ImageArrays | None = None


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
        return Splits(*(load_idx_split(root, split, classes, name) for split in ("train", "test")))

    return load


def _cifar(num_classes):
    def load(data_cfg):
        if data_cfg.root is None:
            raise ConfigError(f"data.root: set it to the extracted cifar-{num_classes}-python folder")
        return Splits(*(load_cifar(data_cfg.root, split, num_classes, data_cfg.label_mode) for split in ("train", "test")))

    return load


def _folder(data_cfg):
    if data_cfg.root is None:
        raise ConfigError("data.root: set it to a folder of <class>/<image> sub-folders")
    root = Path(data_cfg.root)
    kwargs = dict(image_size=_image_size(data_cfg), channels=data_cfg.channels, strict=data_cfg.strict)
    if (root / "train").is_dir():  # the layout `lienzo curate split` writes: train/, val/, test/
        train = load_folder(root / "train", **kwargs)
        kwargs.update(image_size=train.shape[1:], channels=train.shape[0])
        test, val = (load_folder(root / part, class_names=train.class_names, **kwargs) if (root / part).is_dir() else None
                     for part in ("test", "val"))
        return Splits(train, test, val)
    return Splits(load_folder(root, **kwargs), None)


def _cub(data_cfg):
    if data_cfg.root is None:
        raise ConfigError("data.root: set it to the CUB_200_2011 folder (images.txt, classes.txt, images/ ...)")
    size = _image_size(data_cfg) or (224, 224)
    channels = data_cfg.channels or 3
    return Splits(load_cub(data_cfg.root, "train", size, channels), load_cub(data_cfg.root, "test", size, channels))


def _hdf5(data_cfg):
    if data_cfg.root is None:
        raise ConfigError("data.root: set it to the .h5 file")
    splits = Splits(*(load_hdf5(data_cfg.root, split) for split in ("train", "test", "val")))
    for split, part in zip(("test", "val"), (splits.test, splits.val)):
        if part is not None and part.class_names != splits.train.class_names:
            raise DataError(f"{data_cfg.root}: the '{split}' group's class names {part.class_names[:5]} differ from "
                            f"the 'train' group's {splits.train.class_names[:5]}")
    return splits


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
    splits = load_splits(data_cfg)
    return splits.train, splits.test


def load_splits(data_cfg) -> Splits:
    """Read every split the source named by `data.name` holds, with `data.channels` and `data.classes` applied.

    A source with its own validation split (an HDF5 file's `val` group, a folder's `val/`, both written by
    `lienzo curate split`) returns it; the data module then uses it instead of holding out data.val_fraction."""
    if data_cfg.name not in SOURCES:
        raise ConfigError(f"data.name: unknown source '{data_cfg.name}'{did_you_mean(data_cfg.name, SOURCES)}; "
                          f"known: {', '.join(SOURCES)}")
    splits = SOURCES[data_cfg.name](data_cfg)
    if len(splits.train) == 0:
        raise DataError(f"{data_cfg.name}: the training split is empty")
    if splits.val is not None:
        log.info("%s %s: its own 'val' split (%d images) is the validation split; data.val_fraction (%g) is not "
                 "applied", data_cfg.name, data_cfg.root, len(splits.val), data_cfg.val_fraction)
    if data_cfg.channels:
        splits = Splits(*(part.to_channels(data_cfg.channels) if part is not None else None for part in splits))
    if data_cfg.classes:
        splits = Splits(*(part.select_classes(data_cfg.classes) if part is not None else None for part in splits))
    return splits
