"""The files of a run folder, written and read safely: atomic writes, JSON, history.csv, checkpoints.

Every write goes to a temporary file in the same folder, then a rename: a reader (or a crash) never sees
half a file. A file that cannot be read is a `RunError` naming it and saying how to go on.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import tempfile
import zipfile
from pathlib import Path

from lienzo.errors import RunError

log = logging.getLogger("lienzo")


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# Files are created through mkstemp (mode 0600); they get the mode open() would have given them.
_FILE_MODE = 0o666 & ~_umask()


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` (its folders made as needed) through a temporary file and a rename."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.fchmod(fd, _FILE_MODE)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:
        raise RunError(f"cannot write {path}: {err.strerror or err}") from None


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def _json_safe(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def write_json(path: str | Path, data) -> None:
    """`data` as indented JSON; NaN and infinities become null (JSON has no word for them)."""
    atomic_write_text(path, json.dumps(_json_safe(data), indent=2) + "\n")


def read_json(path: str | Path):
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise RunError(f"{path}: not found") from None
    except json.JSONDecodeError as err:
        raise RunError(f"{path}: not valid JSON ({err.msg})") from None


# -- history.csv -----------------------------------------------------------------------------------------

def history_columns(rows: list[dict]) -> list[str]:
    """Every key any row has: epoch, train_*, val_*, the others as first seen, lr*, seconds."""
    seen: list[str] = []
    for row in rows:
        seen += [k for k in row if k not in seen and k not in ("epoch", "seconds")]

    def rank(key: str) -> int:
        return 0 if key.startswith("train_") else 1 if key.startswith("val_") else 3 if key.startswith("lr") else 2

    return ["epoch", *sorted(seen, key=lambda k: (rank(k), seen.index(k))), "seconds"]


def write_history(path: str | Path, rows: list[dict]) -> None:
    """history.csv: one row per epoch, a column for every key a task logged (blank where a row has none)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=history_columns(rows), restval="")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    atomic_write_text(path, buffer.getvalue())


def read_history(path: str | Path) -> list[dict]:
    """history.csv's rows as floats; a blank cell (a key that epoch did not log) is NaN."""
    with open(path, newline="") as f:
        return [{k: (float(v) if v not in ("", None) else math.nan) for k, v in row.items()} for row in csv.DictReader(f)]


# -- checkpoints -----------------------------------------------------------------------------------------

def checkpoint_path(run_dir: str | Path, which: str = "best") -> Path:
    """best.ckpt (or last.ckpt) of a run folder; a checkpoint file given directly is returned as is.

    A run without best.ckpt (it never had the monitored metric) falls back to last.ckpt and says so;
    last.ckpt is never replaced by best.ckpt (resuming from an older epoch would lose work silently)."""
    run_dir = Path(run_dir)
    if run_dir.is_file():
        return run_dir
    if not run_dir.is_dir():
        raise RunError(f"{run_dir}: run folder not found")
    path = run_dir / "checkpoints" / f"{which}.ckpt"
    if path.is_file():
        return path
    last = run_dir / "checkpoints" / "last.ckpt"
    if which == "best" and last.is_file():
        log.warning("%s has no best.ckpt; using last.ckpt", run_dir)
        return last
    raise RunError(f"{run_dir}: no {which}.ckpt in {run_dir / 'checkpoints'} (did the run finish an epoch?)")


def read_checkpoint(run: str | Path, which: str = "best", weights: bool = True) -> tuple[dict, Path]:
    """A run's checkpoint as a dict (memory-mapped when only its hyper-parameters are wanted).

    A damaged file (a copy cut short, a full disk) is a RunError naming it and the way on."""
    path = checkpoint_path(run, which)
    import torch  # only here: the rest of the run folder's code needs no torch

    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False, mmap=not weights)
    except Exception as err:  # torch raises many types on a damaged file
        # torch writes zip archives: one cut short (a copy or a disk that filled up) has lost its directory
        why = "cut short or damaged" if not zipfile.is_zipfile(path) else f"{type(err).__name__}: {str(err)[:80]}"
        raise RunError(f"{path}: not a readable checkpoint ({why}); {way_on(path)}") from None
    if not isinstance(checkpoint, dict) or "config" not in (checkpoint.get("hyper_parameters") or {}):
        raise RunError(f"{path}: not a lienzo checkpoint (no saved configuration)")
    return checkpoint, path


def way_on(damaged: Path) -> str:
    """What a user can do when a run's checkpoint is unreadable: use the run's other checkpoint when that
    one looks whole (torch writes zip archives; one cut short has lost the directory at its end), or begin
    again. Said, never done: which epochs to give up is the user's choice."""
    if damaged.parent.name != "checkpoints":
        return "use another checkpoint"
    fresh = f"train a fresh run from {damaged.parent.parent / 'config.yaml'}"
    other = {"last.ckpt": "best.ckpt", "best.ckpt": "last.ckpt"}.get(damaged.name)
    sibling = damaged.with_name(other) if other else None
    if sibling is None or not sibling.is_file() or not zipfile.is_zipfile(sibling):
        return fresh
    if damaged.name == "last.ckpt":
        return (f"{sibling} looks whole: evaluate, predict and sample use it, and copied over last.ckpt it resumes "
                f"the run from its epoch (the later ones are lost); or {fresh}")
    return (f"{sibling} looks whole: copied over best.ckpt it serves evaluate, predict and sample (with the last "
            f"epoch's weights, not the best's); or {fresh}")
