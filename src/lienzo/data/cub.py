"""Caltech-UCSD Birds (CUB-200-2011): images.txt, image_class_labels.txt, train_test_split.txt, classes.txt
and images/<folder>/<file>, read into memory at one size (`data.image_size`, default 224×224)."""

from __future__ import annotations

from pathlib import Path

import torch

from lienzo.errors import DataError
from lienzo.data.arrays import ImageArrays
from lienzo.data.images import load_image, warn_skipped

FILES = ("images.txt", "image_class_labels.txt", "train_test_split.txt", "classes.txt")


def _table(path: Path, columns: int) -> dict[int, list[str]]:
    if not path.is_file():
        raise DataError(f"{path}: missing (a CUB-200-2011 folder has {', '.join(FILES)} and images/)")
    table = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split(maxsplit=columns - 1)
        if len(parts) != columns or not parts[0].isdigit():
            raise DataError(f"{path} line {n}: expected {columns} fields, got {line!r}")
        table[int(parts[0])] = parts[1:]
    return table


def load_cub(root: str | Path, split: str, image_size=(224, 224), channels: int = 3) -> ImageArrays:
    root = Path(root)
    images, labels = _table(root / "images.txt", 2), _table(root / "image_class_labels.txt", 2)
    is_train, classes = _table(root / "train_test_split.txt", 2), _table(root / "classes.txt", 2)
    class_ids = sorted(classes)
    index = {cid: i for i, cid in enumerate(class_ids)}
    names = [classes[cid][0].split(".", 1)[-1].replace("_", " ") for cid in class_ids]
    want = "1" if split == "train" else "0"
    tensors, targets, paths, skipped = [], [], [], []
    for image_id in sorted(images):
        if image_id not in labels or image_id not in is_train:
            raise DataError(f"{root}: image {image_id} has no label or split entry")
        if is_train[image_id][0] != want:
            continue
        path = root / "images" / images[image_id][0]
        try:
            tensors.append(load_image(path, channels, tuple(image_size)))
        except DataError as err:
            skipped.append((path, str(err)))
            continue
        cid = int(labels[image_id][0])
        if cid not in index:
            raise DataError(f"{root}: image {image_id} has class {cid}, not in classes.txt")
        targets.append(index[cid])
        paths.append(str(path))
    warn_skipped(skipped, str(root))
    if not tensors:
        raise DataError(f"{root}: no readable {split} images")
    return ImageArrays(torch.stack(tensors), torch.tensor(targets, dtype=torch.long), names, paths)
