"""One run folder for all the processes of a multi-process (DDP) job, whoever started them.

Rank 0 creates the folder (an existing run is never reused: `runs.new_run_dir`); the others learn
its name before training starts:

- processes that Lightning's own launcher starts inherit it from rank 0's environment
  (`LIENZO_RUN_DIR`, with rank 0's process id in `LIENZO_RUN_DIR_OWNER`, so that a value left in the
  environment by anything but the parent process is never taken);
- processes started by torchrun, by SLURM's srun, or by hand on several nodes (`NODE_RANK`) read it
  from a marker file that rank 0 writes atomically under the runs folder, named after the job:
  torchrun's run id, rendezvous address and restart count, SLURM's job and step ids, or
  MASTER_ADDR:MASTER_PORT. Once the processes have met, `RunDirCheck` compares every process's
  folder with rank 0's (a mismatch is an error on every rank) and rank 0 removes the marker.

    run_dir = agree_on_run_dir("runs", "fashion")   # the same runs/fashion[-N] on every rank
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import lightning as L

from lienzo.errors import RunError
from lienzo.runs import atomic_write_text, new_run_dir

ENV_DIR = "LIENZO_RUN_DIR"
ENV_OWNER = "LIENZO_RUN_DIR_OWNER"
WAIT_SECONDS = 600.0  # other ranks may still be reading data when a slow rank 0 gets here
POLL_SECONDS = 0.1


def _env_int(name: str, default: int = 0) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def launch() -> tuple[bool, str | None, str]:
    """(is this rank 0, the job's name for its marker file or None, who this process is, for messages).

    Launchers are recognised as Lightning recognises them: torchrun first (it also runs inside
    SLURM), then srun (SLURM_NTASKS set, the job not named bash/interactive), then Lightning's own
    launcher or processes started by hand with NODE_RANK/LOCAL_RANK; a process with none of these
    is alone, or the rank 0 that Lightning's launcher starts the others from."""
    env = os.environ
    if "TORCHELASTIC_RUN_ID" in env:
        rank = _env_int("RANK")
        key = "torchrun-" + "-".join(env.get(k, "") for k in
                                     ("TORCHELASTIC_RUN_ID", "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RESTART_COUNT"))
        return rank == 0, key, f"rank {rank} (torchrun)"
    if "SLURM_NTASKS" in env and env.get("SLURM_JOB_NAME") not in ("bash", "interactive"):
        rank = _env_int("SLURM_PROCID")
        key = f"slurm-{env.get('SLURM_JOB_ID', '')}-{env.get('SLURM_STEP_ID', 'batch')}"
        return rank == 0, (key if _env_int("SLURM_NTASKS", 1) > 1 else None), f"rank {rank} (SLURM)"
    if "NODE_RANK" in env or "LOCAL_RANK" in env:
        node, local = _env_int("NODE_RANK"), _env_int("LOCAL_RANK")
        key = (f"lightning-{env['MASTER_ADDR']}-{env['MASTER_PORT']}"
               if "MASTER_ADDR" in env and "MASTER_PORT" in env else None)
        return node == 0 and local == 0, key, f"node {node} local rank {local}"
    return True, None, "the only process"


def is_rank_zero() -> bool:
    """True in the process that writes the run folder's files (the only one when training alone)."""
    return launch()[0]


def marker_path(base: str | Path, key: str) -> Path:
    """The file under `base` through which rank 0 of job `key` names the run folder to the others."""
    return Path(base) / f".lienzo-job-{re.sub(r'[^A-Za-z0-9_.-]', '_', key)}.json"


def _inherited() -> Path | None:
    """The folder rank 0 chose, when Lightning's launcher started this process from rank 0."""
    # LOCAL_RANK > 0: a process that simply inherited a lienzo process's environment (a subprocess
    # of a program that trained in-process) is not a launcher's child and makes its own folder.
    if _env_int("LOCAL_RANK") > 0 and ENV_DIR in os.environ and os.environ.get(ENV_OWNER) == str(os.getppid()):
        return Path(os.environ[ENV_DIR])
    return None


def _publish(run_dir: Path) -> None:
    """Hand the folder to the processes Lightning's launcher will start from this one."""
    os.environ[ENV_DIR] = str(run_dir)
    os.environ[ENV_OWNER] = str(os.getpid())


def _wait_for_marker(marker: Path, base: Path, who: str, timeout: float) -> Path:
    deadline = time.monotonic() + timeout
    while True:
        try:
            name = json.loads(marker.read_text())["run"]
            return base / name
        except FileNotFoundError:
            pass
        except (ValueError, KeyError) as err:  # written atomically, so a half-written file is a foreign one
            raise RunError(f"{marker}: not a lienzo job marker ({err}); delete it and start the job again") from None
        if time.monotonic() > deadline:
            raise RunError(f"{who} waited {timeout:.0f} s for rank 0 to name the run folder in {marker}: "
                           f"did rank 0 start, and is {base} on a filesystem that every node shares?")
        time.sleep(POLL_SECONDS)


def agree_on_run_dir(base: str | Path, name: str, timeout: float = WAIT_SECONDS) -> Path:
    """The same fresh run folder `base/name` (or name-2, ...) on every process of the job.

    Rank 0 creates it; the others inherit it from Lightning's launcher or wait for the job's marker
    file (up to `timeout` seconds, then a RunError that says where they looked)."""
    base = Path(base)
    inherited = _inherited()
    if inherited is not None:
        run_dir = inherited
    else:
        rank_zero, key, who = launch()
        if rank_zero:
            run_dir = new_run_dir(base, name)
            if key is not None:
                atomic_write_text(marker_path(base, key), json.dumps({"run": run_dir.name, "job": key}) + "\n")
        elif key is None:
            raise RunError(f"{who}: started as one of several processes, but neither by Lightning's launcher nor "
                           f"with MASTER_ADDR and MASTER_PORT set, so it cannot learn rank 0's run folder")
        else:
            run_dir = _wait_for_marker(marker_path(base, key), base, who, timeout)
    _publish(run_dir)
    return run_dir


class RunDirCheck(L.Callback):
    """Once the processes have met: every rank's run folder must be rank 0's (a stale marker left by a
    crashed job of the same name would otherwise split the run silently), and rank 0 removes the marker."""

    def __init__(self, run_dir: str | Path):
        self.run_dir = str(run_dir)

    def setup(self, trainer, pl_module, stage: str) -> None:
        chosen = trainer.strategy.broadcast(self.run_dir)
        # An all-reduce: when it returns on rank 0, every rank has its folder, so the marker can go.
        disagree = trainer.strategy.reduce_boolean_decision(chosen != self.run_dir, all=False)
        _, key, who = launch()
        marker = marker_path(Path(chosen).parent, key) if key is not None else None
        if disagree:
            stale = f" (a stale {marker} from an earlier job? delete it)" if marker else ""
            raise RunError(f"the processes of this job disagree on the run folder: rank 0 uses {chosen}, "
                           f"{who} {self.run_dir}{stale}")
        if marker is not None and trainer.is_global_zero:
            marker.unlink(missing_ok=True)
