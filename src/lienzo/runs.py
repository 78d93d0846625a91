"""Run folders: `<run.dir>/<run.name>/` holding config, metrics, history, checkpoints, plots and the report.

Every file is written atomically (a temporary file in the same folder, then a rename), and an
existing run is never overwritten: a new name is chosen and said.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import tempfile
from pathlib import Path

from .errors import RunError

log = logging.getLogger("lienzo")

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.json"
HISTORY_FILE = "history.csv"
HISTORY_COLUMNS = ["epoch", "train_loss", "train_top1", "val_loss", "val_top1", "lr", "seconds"]


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
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
    atomic_write_text(path, json.dumps(_json_safe(data), indent=2) + "\n")


def read_json(path: str | Path):
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise RunError(f"{path}: not found") from None
    except json.JSONDecodeError as err:
        raise RunError(f"{path}: not valid JSON ({err.msg})") from None


def write_history(path: str | Path, rows: list[dict]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=HISTORY_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    atomic_write_text(path, buffer.getvalue())


def read_history(path: str | Path) -> list[dict]:
    with open(path, newline="") as f:
        return [{k: (float(v) if v not in ("", None) else math.nan) for k, v in row.items()} for row in csv.DictReader(f)]


def new_run_dir(base: str | Path, name: str) -> Path:
    """Create and return a fresh run folder; if `name` is taken use name-2, name-3, ... and say so."""
    base = Path(base)
    try:
        base.mkdir(parents=True, exist_ok=True)
        candidate, n = base / name, 1
        while True:
            try:
                candidate.mkdir()
                break
            except FileExistsError:
                n += 1
                candidate = base / f"{name}-{n}"
        if n > 1:
            log.warning("run folder %s exists; this run goes to %s", base / name, candidate)
        probe = candidate / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise RunError(f"cannot create a run folder in {base}: {err.strerror or err}") from None
    return candidate


def unique_path(folder: str | Path, stem: str, suffix: str = ".json") -> Path:
    """folder/stem.suffix, or stem-2, stem-3, ... when taken: results are never overwritten."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path, n = folder / f"{stem}{suffix}", 1
    while path.exists():
        n += 1
        path = folder / f"{stem}-{n}{suffix}"
    return path


def checkpoint_path(run_dir: str | Path, which: str = "best") -> Path:
    """best.ckpt (or last.ckpt) of a run folder; a checkpoint file given directly is returned as is."""
    run_dir = Path(run_dir)
    if run_dir.is_file():
        return run_dir
    if not run_dir.is_dir():
        raise RunError(f"{run_dir}: run folder not found")
    path = run_dir / "checkpoints" / f"{which}.ckpt"
    if not path.is_file():
        other = run_dir / "checkpoints" / ("last.ckpt" if which == "best" else "best.ckpt")
        if other.is_file():
            return other
        raise RunError(f"{run_dir}: no checkpoint in {run_dir / 'checkpoints'} (did the run finish an epoch?)")
    return path
