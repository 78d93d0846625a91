"""Image folders: `root/<class>/<image>` (or `root/train/<class>/...` and `root/test/<class>/...`)."""

from __future__ import annotations

import collections
import logging
from pathlib import Path

import torch
from PIL import Image

from lienzo.errors import DataError
from lienzo.data.arrays import ImageArrays
from lienzo.data.images import IMAGE_SUFFIXES, image_mode_channels, load_image, warn_skipped

log = logging.getLogger("lienzo")


def list_class_folders(root: Path) -> list[tuple[str, list[Path]]]:
    """(class name, files) for every sub-folder, sorted by name; hidden files are ignored."""
    if not root.is_dir():
        raise DataError(f"{root}: image folder not found")
    classes = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataError(f"{root}: no class folders (expected {root}/<class>/<image>)")
    result = []
    for folder in classes:
        files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
        if not files:
            raise DataError(f"{folder}: class '{folder.name}' has no files")
        result.append((folder.name, files))
    return result


def _common_size(files: list[Path]) -> tuple[int, int]:
    sizes = collections.Counter()
    for path in files:
        try:
            with Image.open(path) as image:
                sizes[(image.height, image.width)] += 1
        except Exception:
            continue
    if not sizes:
        raise DataError("no readable images")
    return sizes.most_common(1)[0][0]


def load_folder(
    root: str | Path,
    class_names: list[str] | None = None,
    image_size: tuple[int, int] | None = None,
    channels: int | None = None,
    strict: bool = False,
) -> ImageArrays:
    """Decode every image under root/<class>/ into memory at one size and one channel count.

    Unreadable or non-image files are skipped with one warning that counts and names them
    (an error with strict=True). A class left with no readable image is an error.
    """
    root = Path(root)
    folders = list_class_folders(root)
    names = [name for name, _ in folders]
    if class_names is not None:
        unknown = sorted(set(names) - set(class_names))
        if unknown:
            raise DataError(f"{root}: class folder '{unknown[0]}' is not among the training classes")
        names = list(class_names)
    all_files = [f for _, files in folders for f in files]
    if channels is None:
        channels = 3 if any(image_mode_channels(f) == 3 for f in all_files if _is_image_name(f)) else 1
    if image_size is None:
        image_size = _common_size(all_files)
        log.info("%s: images resized to the most common size %dx%d (set data.image_size to choose)", root, *image_size)
    images, labels, paths, skipped = [], [], [], []
    for name, files in folders:
        label = names.index(name)
        count = 0
        for path in files:
            try:
                images.append(load_image(path, channels, image_size))
            except DataError as err:
                if strict:
                    raise
                skipped.append((path, str(err)))
                continue
            labels.append(label)
            paths.append(str(path))
            count += 1
        if count == 0:
            raise DataError(f"{root / name}: class '{name}' has no readable images")
    warn_skipped(skipped, str(root))
    return ImageArrays(torch.stack(images), torch.tensor(labels, dtype=torch.long), names, paths)


def _is_image_name(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES
