"""Files curation writes: each image placed under a name of its own (never replacing another), class
names as folder names, and CSV text.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import re
import shutil
from pathlib import Path

log = logging.getLogger("lienzo")


def place(path: Path, folder: Path, copy: bool = False) -> Path:
    """Link (or copy) `path` into `folder` under its own name, or under name-2.ext, name-3.ext, ... when that
    is taken: files from different folders may share a name, and none may replace another. Returns the target."""
    folder.mkdir(parents=True, exist_ok=True)
    target, n = folder / path.name, 1
    while target.exists() or target.is_symlink():  # is_symlink: a dangling link still takes the name
        n += 1
        target = folder / f"{path.stem}-{n}{path.suffix}"
    if copy:
        shutil.copy2(path, target)
    else:
        os.symlink(path.resolve(), target)
    if n > 1:
        log.info("%s → %s (%s was taken)", path, target, path.name)
    return target


def safe_folder_name(name: str) -> str:
    """A class name as a folder name: 'T-shirt/top' → 'T-shirt_top'."""
    return re.sub(r"[/\\\0]", "_", name)


def csv_text(rows: list[dict], fieldnames: list[str] | None = None) -> str:
    """CSV text with a header (the first row's keys unless named); no rows and no names give ''."""
    buffer = io.StringIO()
    fieldnames = fieldnames or (list(rows[0]) if rows else None)
    if fieldnames:
        writer = csv.DictWriter(buffer, fieldnames=fieldnames)
        writer.writeheader()
        writer.writerows(rows)
    return buffer.getvalue()
