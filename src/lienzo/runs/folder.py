"""One run folder: its file names, a fresh name that never overwrites, the markers that tell its state,
and metrics.json's envelope (who wrote it, when, and the task's results per split).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from lienzo.errors import RunError
from lienzo.legacy import LEGACY_MAIN_METRIC, LEGACY_TASK
from lienzo.legacy import info_of as saved_info  # noqa: F401 (the data facts of a checkpoint, old or new)
from lienzo.runs.files import atomic_write_text, read_json

log = logging.getLogger("lienzo")

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.json"
HISTORY_FILE = "history.csv"
RUNNING_FILE = ".running"
CREATED_FILE = ".created"
SPLITS = ("train", "val", "test")


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
    except OSError as err:
        raise RunError(f"cannot create a run folder in {base}: {err.strerror or err}") from None
    stamp_created(candidate)  # also proves the folder writable: an error names it
    return candidate


def stamp_created(run_dir: Path) -> None:
    """<run>/.created: when the run began (UTC), written once."""
    from datetime import datetime, timezone

    atomic_write_text(Path(run_dir) / CREATED_FILE, datetime.now(timezone.utc).isoformat(timespec="seconds"))


def unique_path(folder: str | Path, stem: str, suffix: str = ".json") -> Path:
    """folder/stem.suffix, or stem-2, stem-3, ... when taken: results are never overwritten."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path, n = folder / f"{stem}{suffix}", 1
    while path.exists():
        n += 1
        path = folder / f"{stem}-{n}{suffix}"
    return path


# -- state markers ---------------------------------------------------------------------------------------

def mark_running(run_dir: Path) -> Path:
    """<run>/.running names this process while it trains; a killed run leaves it behind, naming a dead one."""
    import socket

    marker = Path(run_dir) / RUNNING_FILE
    atomic_write_text(marker, json.dumps({"pid": os.getpid(), "host": socket.gethostname()}))
    return marker


def run_state(run_dir: Path) -> str:
    """running (its process is alive: a resumed finished run too), finished (metrics.json written) or
    interrupted."""
    import socket

    marker = run_dir / RUNNING_FILE
    try:
        owner = json.loads(marker.read_text())
    except (OSError, ValueError):
        owner = None
    if owner is not None:
        if owner.get("host") != socket.gethostname():
            return "running"  # another machine's process: it cannot be checked from here
        try:
            os.kill(int(owner["pid"]), 0)
            return "running"
        except ProcessLookupError:
            pass
        except (PermissionError, KeyError, ValueError, TypeError):
            return "running"
    return "finished" if (run_dir / METRICS_FILE).is_file() else "interrupted"


# -- metrics.json ----------------------------------------------------------------------------------------

def envelope(task: str, run: str, results: dict[str, dict], main_metric: tuple[str, str, str], **fields) -> dict:
    """metrics.json for any task: who wrote it and when, the task's facts, and its results per split.

    Splits stay top-level keys (`metrics["test"]`), listed in `splits`; `main` is the headline number
    (`lienzo runs` shows it without importing the task)."""
    from datetime import datetime, timezone

    from lienzo import __version__

    split, key, mode = main_metric
    value = results.get(split, {}).get(key)
    return {
        "task": task,
        "lienzo": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "run": run,
        **fields,
        "splits": [s for s in SPLITS if s in results],
        "main": {"split": split, "metric": key, "mode": mode, "value": value},
        **results,
    }


def read_metrics(path: str | Path) -> dict:
    """metrics.json in today's envelope; a file written before the envelope is upgraded to it."""
    metrics = read_json(path)
    if "task" not in metrics:
        metrics = {"task": LEGACY_TASK, "lienzo": None, "created": None, **metrics}
        metrics["splits"] = [s for s in SPLITS if isinstance(metrics.get(s), dict)]
        main_split, key, mode = LEGACY_MAIN_METRIC
        split = main_split if main_split in metrics["splits"] else (metrics["splits"] or [main_split])[-1]
        metrics["main"] = {"split": split, "metric": key, "mode": mode, "value": metrics.get(split, {}).get(key)}
    return metrics
