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

from lienzo.errors import RunError
from lienzo.legacy import LEGACY_MAIN_METRIC, LEGACY_TASK
from lienzo.legacy import info_of as saved_info  # noqa: F401 (the data facts of a checkpoint, old or new)

log = logging.getLogger("lienzo")

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.json"
HISTORY_FILE = "history.csv"
RUNNING_FILE = ".running"
CREATED_FILE = ".created"
SPLITS = ("train", "val", "test")


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# Files are created through mkstemp (mode 0600); they get the mode open() would have given them.
_FILE_MODE = 0o666 & ~_umask()


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
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
    atomic_write_text(path, json.dumps(_json_safe(data), indent=2) + "\n")


def read_json(path: str | Path):
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise RunError(f"{path}: not found") from None
    except json.JSONDecodeError as err:
        raise RunError(f"{path}: not valid JSON ({err.msg})") from None


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
    """A run's checkpoint as a dict (memory-mapped when only its hyper-parameters are wanted)."""
    path = checkpoint_path(run, which)
    import torch  # only here: the rest of the run folder's code needs no torch

    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False, mmap=not weights)
    except Exception as err:  # torch raises many types on a damaged file
        raise RunError(f"{path}: not a readable checkpoint ({type(err).__name__})") from None
    if not isinstance(checkpoint, dict) or "config" not in (checkpoint.get("hyper_parameters") or {}):
        raise RunError(f"{path}: not a lienzo checkpoint (no saved configuration)")
    return checkpoint, path


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


# -- the runs in a folder ------------------------------------------------------------------------

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


def describe_run(run_dir: Path) -> dict:
    """One run folder as a flat dict (what `lienzo runs` prints), read from its files without importing
    its task: name, task, arch, data, epochs, main metric, seconds, state, created."""
    import yaml

    run_dir = Path(run_dir)
    try:
        config = yaml.safe_load((run_dir / CONFIG_FILE).read_text()) or {}
    except (OSError, yaml.YAMLError):
        config = {}
    history = read_history(run_dir / HISTORY_FILE) if (run_dir / HISTORY_FILE).is_file() else []
    metrics = read_metrics(run_dir / METRICS_FILE) if (run_dir / METRICS_FILE).is_file() else {}
    main = metrics.get("main") or {}
    seconds = metrics.get("train_seconds", sum(r.get("seconds", 0.0) or 0.0 for r in history))
    task = config.get("task", LEGACY_TASK)
    return {
        "name": run_dir.name,
        "path": str(run_dir),
        "task": task,
        # what the task said it trained; a run still training has only its config to go by
        "arch": metrics.get("arch", (config.get("model") or {}).get("arch") if task == LEGACY_TASK else None),
        "data": (config.get("data") or {}).get("name"),
        "epochs": len(history),
        # with trainer.max_steps, epochs are not what ends the run (a GAN's epoch is a logging interval)
        "max_epochs": None if (config.get("trainer") or {}).get("max_steps") else (config.get("trainer") or {}).get("max_epochs"),
        "metric": f"{main['split']} {main['metric']}" if main else None,
        "main": main.get("value"),
        "mode": main.get("mode"),
        "seconds": round(float(seconds), 1),
        "state": run_state(run_dir),
        "created": _created(run_dir),
    }


def _created(run_dir: Path) -> str | None:
    """When the run folder was made (UTC, like metrics.json's `created`); resuming does not change it."""
    import datetime

    try:
        return (run_dir / CREATED_FILE).read_text().strip()
    except OSError:  # a run made before the stamp existed: the folder's own time
        pass
    try:
        stamp = run_dir.stat().st_ctime
    except OSError:
        return None
    return datetime.datetime.fromtimestamp(stamp, datetime.timezone.utc).isoformat(timespec="seconds")


RUN_SORT_KEYS = ("created", "name", "task", "main", "seconds", "epochs", "state")


def list_runs(base: str | Path = "runs", sort: str = "created") -> list[dict]:
    """Every run folder (one holding config.yaml) directly under `base`, described, sorted by `sort`
    (`main`: grouped by metric, the best first in each metric's own direction, runs without one last)."""
    base = Path(base)
    if not base.is_dir():
        raise RunError(f"{base}: folder not found")
    if sort not in RUN_SORT_KEYS:
        raise RunError(f"cannot sort runs by {sort!r}; choose one of {', '.join(RUN_SORT_KEYS)}")
    runs = [describe_run(d) for d in sorted(base.iterdir()) if (d / CONFIG_FILE).is_file()]

    def key(run):
        value = run[sort]
        if sort == "main":  # grouped by metric (numbers of different metrics do not compare), best first
            if value is None:
                return (1, "", 0.0)
            return (0, run["metric"] or "", -value if run["mode"] == "max" else value)
        return (value is None, value if value is not None else "")

    return sorted(runs, key=key)


class Laps:
    """Seconds each stage of a long job took, in order (`lap("scenes")` when a stage ends), and their total."""

    def __init__(self) -> None:
        import time

        self._now = time.perf_counter
        self._clock = self._now()
        self.seconds: dict[str, float] = {}

    def lap(self, stage: str) -> None:
        now = self._now()
        self.seconds[stage] = round(now - self._clock, 1)
        self._clock = now

    def total(self) -> float:
        self.seconds["total"] = round(sum(v for k, v in self.seconds.items() if k != "total"), 1)
        return self.seconds["total"]


def write_study(folder: Path, study: dict, markdown: str, page: str) -> dict:
    """A study's results into its folder, each file atomically: study.json, study.md (its tables) and
    study.html (the page); returns the study with its folder under "dir"."""
    write_json(folder / "study.json", study)
    atomic_write_text(folder / "study.md", markdown)
    atomic_write_text(folder / "study.html", page)
    log.info("study written to %s (%.1f minutes)", folder, study.get("seconds", {}).get("total", 0.0) / 60)
    return {**study, "dir": str(folder)}

