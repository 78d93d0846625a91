"""The runs in a folder, as `lienzo runs` shows them: each described from its files without importing its
task, and sorted by any column.
"""

from __future__ import annotations

from pathlib import Path

from lienzo.errors import RunError
from lienzo.legacy import LEGACY_TASK
from lienzo.runs.files import read_history
from lienzo.runs.folder import CONFIG_FILE, CREATED_FILE, HISTORY_FILE, METRICS_FILE, read_metrics, run_state

RUN_SORT_KEYS = ("created", "name", "task", "main", "seconds", "epochs", "state")


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
    trainer = config.get("trainer") or {}
    return {
        "name": run_dir.name,
        "path": str(run_dir),
        "task": task,
        # what the task said it trained; a run still training has only its config to go by
        "arch": metrics.get("arch", (config.get("model") or {}).get("arch") if task == LEGACY_TASK else None),
        "data": (config.get("data") or {}).get("name"),
        "epochs": len(history),
        # with trainer.max_steps, epochs are not what ends the run (a GAN's epoch is a logging interval)
        "max_epochs": None if trainer.get("max_steps") else trainer.get("max_epochs"),
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


def _sort_key(sort: str):
    def key(run: dict):
        value = run[sort]
        if sort == "main":  # grouped by metric (numbers of different metrics do not compare), best first
            if value is None:
                return (1, "", 0.0)
            return (0, run["metric"] or "", -value if run["mode"] == "max" else value)
        return (value is None, value if value is not None else "")

    return key


def list_runs(base: str | Path = "runs", sort: str = "created") -> list[dict]:
    """Every run folder (one holding config.yaml) directly under `base`, described, sorted by `sort`
    (`main`: grouped by metric, the best first in each metric's own direction, runs without one last)."""
    base = Path(base)
    if not base.is_dir():
        raise RunError(f"{base}: folder not found")
    if sort not in RUN_SORT_KEYS:
        raise RunError(f"cannot sort runs by {sort!r}; choose one of {', '.join(RUN_SORT_KEYS)}")
    runs = [describe_run(d) for d in sorted(base.iterdir()) if (d / CONFIG_FILE).is_file()]
    return sorted(runs, key=_sort_key(sort))
