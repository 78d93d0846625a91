"""Run folders: `<run.dir>/<run.name>/` holding config, metrics, history, checkpoints, plots and the report.

- files: atomic writes, JSON, history.csv, reading checkpoints (a damaged one is one error line);
- folder: file names, fresh names (an existing run is never overwritten), state markers, metrics.json;
- listing: the runs in a folder as `lienzo runs` shows them;
- study: a study's folder (its stage times and files).
"""

from lienzo.runs.files import (atomic_write_bytes, atomic_write_text, checkpoint_path, history_columns, read_checkpoint,
                               read_history, read_json, write_history, write_json)
from lienzo.runs.folder import (CONFIG_FILE, CREATED_FILE, HISTORY_FILE, METRICS_FILE, RUNNING_FILE, SPLITS, envelope,
                                mark_running, new_run_dir, read_metrics, run_state, saved_info, stamp_created,
                                unique_path)
from lienzo.runs.listing import RUN_SORT_KEYS, describe_run, list_runs
from lienzo.runs.study import Laps, write_study

__all__ = [
    "CONFIG_FILE", "CREATED_FILE", "HISTORY_FILE", "METRICS_FILE", "RUNNING_FILE", "RUN_SORT_KEYS", "SPLITS",
    "Laps", "atomic_write_bytes", "atomic_write_text", "checkpoint_path", "describe_run", "envelope",
    "history_columns", "list_runs", "mark_running", "new_run_dir", "read_checkpoint", "read_history", "read_json",
    "read_metrics", "run_state", "saved_info", "stamp_created", "unique_path", "write_history", "write_json",
    "write_study",
]
