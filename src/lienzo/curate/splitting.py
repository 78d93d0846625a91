"""`lienzo curate split`: stratified train/val/test into folders or one HDF5 file (area-resized uint8, class
names stored).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch

from lienzo.curate.files import place, safe_folder_name
from lienzo.data.folders import load_folder
from lienzo.data.hdf5 import write_hdf5
from lienzo.data.splits import stratified_split
from lienzo.errors import ConfigError, RunError

log = logging.getLogger("lienzo")


def split(folder: str | Path, out: str | Path, *, val: float = 0.1, test: float = 0.1, seed: int = 0,
          image_size: tuple[int, int] | None = None, channels: int | None = None) -> dict[str, int]:
    """Stratified train/val/test split of folder/<class>/ images: into out/{train,val,test}/<class>/ (links),
    or, when `out` ends in .h5, into one HDF5 file with those groups (uint8 images resized with area
    interpolation to image_size, labels, class_names)."""
    folder, out = Path(folder), Path(out)
    if out.exists() and (out.is_file() or any(out.iterdir())):
        raise RunError(f"{out} exists; choose a new output")
    if not 0 <= val < 1 or not 0 <= test < 1 or val + test >= 1:
        raise ConfigError(f"split fractions val={val} test={test} must be in [0, 1) and sum below 1")
    to_hdf5 = out.suffix in (".h5", ".hdf5")
    if to_hdf5:
        arrays = load_folder(folder, image_size=image_size, channels=channels)
        labels, names, paths = arrays.labels, arrays.class_names, arrays.paths
    else:
        from lienzo.data.folders import list_class_folders

        classes = list_class_folders(folder)
        names = [n for n, _ in classes]
        paths = [str(p) for _, files in classes for p in files]
        labels = torch.tensor([i for i, (_, files) in enumerate(classes) for _ in files])
    parts = _split_indices(labels, val, test, seed)
    counts = {}
    if to_hdf5:
        partial = out.with_name(out.name + ".partial")
        partial.unlink(missing_ok=True)
        for part, index in parts.items():
            if len(index):
                write_hdf5(partial, arrays.images[index].permute(0, 2, 3, 1).numpy(), labels[index].numpy(), names, part)
                counts[part] = len(index)
        os.replace(partial, out)
    else:
        renamed = 0
        for part, index in parts.items():
            for i in index.tolist():
                source = Path(paths[i])
                renamed += place(source, out / part / safe_folder_name(names[int(labels[i])])).name != source.name
            counts[part] = len(index)
        log.info("linked %d images into %s (%d renamed: name taken)", sum(counts.values()), out, renamed)
    return counts


def _split_indices(labels: torch.Tensor, val: float, test: float, seed: int) -> dict[str, torch.Tensor]:
    """{'train', 'val', 'test'}: stratified indices into `labels`; test is held out first, then val from the rest."""
    everything, none = torch.arange(len(labels)), torch.tensor([], dtype=torch.long)
    rest, test_idx = stratified_split(labels, test, seed) if test > 0 else (everything, none)
    train_rel, val_rel = (stratified_split(labels[rest], val / (1 - test), seed + 1) if val > 0
                          else (torch.arange(len(rest)), none))
    return {"train": rest[train_rel], "val": rest[val_rel], "test": test_idx}
