"""Training, configured in one place: the Lightning Trainer with lienzo's callbacks and run folder, for any task.

    run_dir = train(load_config("configs/fashion_fast.yaml"))
    run_dir = train(resume="runs/fashion_fast")
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import (Checkpoint, EarlyStopping, LearningRateMonitor, ModelCheckpoint,
                                         TQDMProgressBar)
from lightning.pytorch.plugins.io import TorchCheckpointIO

from lienzo import legacy
from lienzo.config import Config, dump_config
from lienzo.distributed import RunDirCheck, agree_on_run_dir, is_rank_zero
from lienzo.errors import ConfigError, RunError
from lienzo.evaluate import check_fits, finalize_run
from lienzo.hardware import resolve_accelerator, resolve_precision
from lienzo.runs import (CONFIG_FILE, HISTORY_FILE, atomic_write_text, mark_running, read_checkpoint, saved_info,
                   write_history)
from lienzo.tasks import complete_config, get_task, load_config
from lienzo.tasks.base import Task

log = logging.getLogger("lienzo")


class AtomicCheckpointIO(TorchCheckpointIO):
    """Checkpoints go to a temporary file first and are renamed into place: a kill -9 mid-write
    leaves the previous checkpoint intact."""

    def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        torch.save(legacy.stamp(checkpoint), tmp)
        os.replace(tmp, path)


class HistoryWriter(Checkpoint):
    """Writes history.csv at the end of every epoch: every scalar the task logged for loggers in this epoch,
    the learning rate of every optimizer, and the epoch's seconds. Its rows travel in the checkpoint, so a
    resumed run continues the same history. (A Checkpoint subclass so that Lightning calls it after the
    LightningModule logged the epoch's metrics, and before ModelCheckpoint.)

    Lightning's `logged_metrics` keep the last value of every metric ever logged; a metric logged this epoch
    is a new tensor there, so the row takes the entries that are not the objects they were when the epoch
    began: a metric logged every few epochs (a GAN's FID) leaves the other rows blank instead of repeating
    its last value. Metrics logged with `logger=False` (a progress-bar figure) are not history."""

    def __init__(self, path: Path):
        self.path = path
        self.rows: list[dict] = []
        self._start = time.perf_counter()
        self._lrs: dict[str, float] = {}
        self._before: dict = {}

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._start = time.perf_counter()
        self._before = dict(trainer.logged_metrics)  # references: identity tells what this epoch logs anew

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        # The rates the epoch's last step used (schedulers move on at the epoch's end, before we write).
        if batch_idx == trainer.num_training_batches - 1:
            self._lrs = learning_rates(trainer.optimizers)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        row: dict = {"epoch": trainer.current_epoch + 1}
        for name, value in trainer.logged_metrics.items():
            if value is self._before.get(name):
                continue  # not logged in this epoch
            if isinstance(value, (int, float)) or (torch.is_tensor(value) and value.numel() == 1):
                row[name] = float(value)
        row.update(self._lrs or learning_rates(trainer.optimizers))
        row["seconds"] = time.perf_counter() - self._start
        self.rows = [r for r in self.rows if r["epoch"] < row["epoch"]] + [row]
        if trainer.is_global_zero:
            write_history(self.path, self.rows)

    def state_dict(self) -> dict:
        return {"rows": self.rows}

    def load_state_dict(self, state_dict: dict) -> None:
        self.rows = list(state_dict.get("rows", []))


def learning_rates(optimizers) -> dict[str, float]:
    """{"lr": first group's rate} for one optimizer (lr-<optimizer><i> for several), plus
    <that>-<group name or index> for every group when the groups' rates differ."""
    rates: dict[str, float] = {}
    for i, optimizer in enumerate(optimizers):
        groups = optimizer.param_groups
        prefix = "lr" if len(optimizers) == 1 else f"lr-{type(optimizer).__name__.lower()}{i}"
        rates[prefix] = float(groups[0]["lr"])
        if len({g["lr"] for g in groups}) > 1:
            for j, group in enumerate(groups):
                rates[f"{prefix}-{group.get('name', j)}"] = float(group["lr"])
    return rates


class ResumeHint(L.Callback):
    def __init__(self, run_dir: Path):
        self.run_dir = run_dir

    def on_exception(self, trainer, pl_module, exception) -> None:
        if isinstance(exception, KeyboardInterrupt) and trainer.is_global_zero:
            log.warning("interrupted; continue with: lienzo train --resume %s", self.run_dir)


class TimeEstimate(L.Callback):
    """Says how long the run will take before it is under way, from a short measured warm-up (steps
    `skip`..`skip + measure` of the first epoch, after start-up costs), and again after the first
    epoch, whose time includes validation. Steps of later epochs count at the task's `step_cost`."""

    def __init__(self, task: Task, skip: int = 5, measure: int = 20):
        self.task, self.skip, self.measure = task, skip, measure
        self._start: float | None = None
        self._first_epoch = 0
        self._epoch_start = 0.0
        self.estimate: float | None = None  # seconds for the whole run, from the warm-up

    def on_train_start(self, trainer, pl_module) -> None:
        self._first_epoch = trainer.current_epoch  # a resumed run estimates from where it resumed

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._epoch_start = time.perf_counter()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.current_epoch == self._first_epoch and batch_idx == self.skip:
            self._start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self._start is None or batch_idx != self.skip + self.measure - 1 or self.estimate is not None:
            return
        per_step = (time.perf_counter() - self._start) / self.measure
        remaining = max(int(trainer.estimated_stepping_batches) - trainer.global_step, 0)
        self.estimate = per_step * self._weighted(trainer, pl_module, remaining, batch_idx + 1)
        if trainer.is_global_zero:
            log.info("about %s of training to go (%.1f ms a step over %d steps; validation and the final "
                     "evaluation come on top)", _duration(self.estimate), 1000 * per_step, remaining)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        epochs_left = (trainer.max_epochs or 0) - trainer.current_epoch - 1
        if trainer.current_epoch != self._first_epoch or epochs_left <= 0 or not trainer.is_global_zero:
            return
        seconds = time.perf_counter() - self._epoch_start
        left = self._weighted(trainer, pl_module, epochs_left * trainer.num_training_batches, trainer.num_training_batches)
        log.info("epoch %d took %s with validation: about %s to go", trainer.current_epoch + 1, _duration(seconds),
                 _duration(seconds * left / trainer.num_training_batches))

    def _weighted(self, trainer, pl_module, remaining: int, done_in_epoch: int) -> float:
        """`remaining` steps counted in steps of the current epoch: a task whose steps cost more or less in
        later epochs (progressive resizing) says how much through `Task.step_cost(module, epoch)`."""
        per_epoch = trainer.num_training_batches
        if not per_epoch or per_epoch == float("inf"):
            return float(remaining)

        def cost(epoch: int) -> float:
            return self.task.step_cost(pl_module, epoch)

        epoch, now, total = trainer.current_epoch, cost(trainer.current_epoch), 0.0
        take = min(remaining, max(per_epoch - done_in_epoch, 0))
        while remaining > 0:
            total += take * cost(epoch) / now
            remaining -= take
            epoch, take = epoch + 1, min(remaining, per_epoch)
        return total


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def build_trainer(cfg: Config, run_dir: Path, task: Task, has_val: bool, extra_callbacks=(),
                  macs_per_image: float | None = None, **overrides) -> L.Trainer:
    """The Trainer every lienzo verb uses: precision, devices, checkpoints, early stopping, progress, loggers,
    and the callbacks `task` (the config's task, resolved once by the caller) asks for.

    `macs_per_image` (the model's size) lets precision auto keep tiny models in fp32 on the CPU."""
    tcfg = cfg.trainer
    monitor, mode = resolve_monitor(cfg, task, has_val)
    callbacks = [HistoryWriter(run_dir / HISTORY_FILE), ResumeHint(run_dir), TimeEstimate(task), *extra_callbacks]
    callbacks += task.callbacks(cfg)
    checkpoints = run_dir / "checkpoints"
    callbacks.append(ModelCheckpoint(
        dirpath=checkpoints, filename="best", monitor=monitor, mode=mode, save_on_train_epoch_end=True,
        enable_version_counter=False, auto_insert_metric_name=False,
    ))
    # last.ckpt after every epoch, by a checkpoint of its own: Lightning >= 2.6 rewrites save_last's file only
    # when a top-k file is written at the same step, so it went stale after every epoch that did not improve.
    # After best's callback, so last.ckpt holds what best's callback recorded too.
    callbacks.append(ModelCheckpoint(
        dirpath=checkpoints, filename="last", monitor=None, save_top_k=1, save_on_train_epoch_end=True,
        enable_version_counter=False, auto_insert_metric_name=False,
    ))
    if tcfg.early_stopping_patience:
        callbacks.append(EarlyStopping(monitor=monitor, mode=mode, patience=tcfg.early_stopping_patience,
                                       check_on_train_epoch_end=True))
    if tcfg.progress:
        callbacks.append(TQDMProgressBar(refresh_rate=25))
    logger = build_logger(cfg, run_dir)
    if logger:
        callbacks.append(LearningRateMonitor(logging_interval="epoch"))
    accelerator = resolve_accelerator(tcfg.accelerator)
    kwargs = dict(
        accelerator=accelerator,
        devices=tcfg.devices,
        num_nodes=tcfg.num_nodes,
        strategy=tcfg.strategy,
        precision=resolve_precision(tcfg.precision, tcfg.accelerator, macs_per_image),
        max_epochs=tcfg.max_epochs,
        callbacks=callbacks,
        logger=logger,
        log_every_n_steps=50,
        plugins=[AtomicCheckpointIO()],
        num_sanity_val_steps=0,
        enable_model_summary=False,
        enable_progress_bar=tcfg.progress,
        default_root_dir=str(run_dir),
        benchmark=accelerator == "gpu",
    )
    if tcfg.max_steps is not None:  # steps, however many epochs they take
        kwargs.update(max_steps=tcfg.max_steps, max_epochs=-1)
    kwargs.update(task.trainer_kwargs(cfg))
    kwargs.update(overrides)
    return L.Trainer(**kwargs)


def resolve_monitor(cfg: Config, task: Task, has_val: bool) -> tuple[str, str]:
    """The task's (metric, mode) for best.ckpt; without a validation split, said once, not silently."""
    monitor, mode = task.monitor(cfg, has_val)
    if not has_val and monitor.startswith("train_") and cfg.trainer.monitor != monitor:
        log.warning("no validation split (data.val_fraction=0): best.ckpt and early stopping watch %s, "
                    "not trainer.monitor=%s", monitor, cfg.trainer.monitor)
    return monitor, mode


def build_logger(cfg: Config, run_dir: Path):
    """trainer.logger: csv is history.csv itself; tensorboard and mlflow log beside it, through Lightning."""
    kind = cfg.trainer.logger
    if kind == "csv":
        return False
    if kind == "tensorboard":
        from lightning.pytorch.loggers import TensorBoardLogger

        _require("tensorboard", "tensorboard")
        return TensorBoardLogger(save_dir=str(run_dir), name="tensorboard", version="", default_hp_metric=False)
    from lightning.pytorch.loggers import MLFlowLogger

    _require("mlflow", "mlflow-skinny")
    # A local folder beside the runs: `mlflow ui --backend-store-uri <run.dir>/mlruns` shows them, no server.
    # MLflow 3 keeps that file store only on request; a folder is what needs no database or server.
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    store = (Path(cfg.run.dir) / "mlruns").resolve()
    return MLFlowLogger(experiment_name=cfg.run.name or "lienzo", run_name=run_dir.name,
                        tracking_uri=store.as_uri())


def _require(module: str, package: str) -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise ConfigError(f"trainer.logger: {module} is not installed (pip install {package}, "
                          f"or pip install 'lienzo[loggers]')")


def configure_threads(cfg: Config) -> None:
    if cfg.trainer.threads:
        torch.set_num_threads(cfg.trainer.threads)


def build_task(cfg: Config, data, load_weights: bool = True) -> L.LightningModule:
    """The task's LightningModule for a config and its set-up data module."""
    cfg = complete_config(cfg)
    task = get_task(cfg.task)
    return task.build_module(cfg, task.data_info(data), load_weights)


def train(cfg: Config | None = None, *, resume: str | Path | None = None, overrides: list[str] = ()) -> Path:
    """Train the config's task; returns the run folder. With `resume`, continue that run from last.ckpt."""
    if resume is not None:
        run_dir = Path(resume)
        state, last = read_checkpoint(run_dir, "last")
        cfg = load_config(run_dir / CONFIG_FILE, overrides)
        task = get_task(cfg.task)
        data = task.data_module(cfg, saved_info(state["hyper_parameters"]))
        task.resume_data(data, state["epoch"] + 1)  # saved at the end of that (0-based) epoch
        log.info("resuming %s from %s", run_dir, last.name)
    else:
        if cfg is None:
            raise RunError("train needs a config or a run to resume")
        cfg = complete_config(cfg)
        last = None
        task = get_task(cfg.task)
        data = task.data_module(cfg)
    configure_threads(cfg)
    L.seed_everything(cfg.run.seed, workers=True, verbose=False)
    data.setup("fit")
    info = task.data_info(data)
    module = task.build_module(cfg, info)
    if last is not None:  # before anything is written: a resumed run's folder stays as it was on a mistake
        if not legacy.is_current(state):  # interrupted under an earlier lienzo: resume from today's terms
            last = _upgraded_for_resume(state, cfg, module, last)
            state = torch.load(last, map_location="cpu", weights_only=False)
        check_fits(module, state, last)
    if resume is None:
        run_dir = agree_on_run_dir(cfg.run.dir, cfg.run.name or "run")  # the same on every rank, however started
        cfg.run.name = run_dir.name
    rank_zero = is_rank_zero()
    marker = None
    try:
        if rank_zero:
            atomic_write_text(run_dir / CONFIG_FILE, dump_config(cfg))
            marker = mark_running(run_dir)
        has_val = task.has_validation(data)
        trainer = build_trainer(cfg, run_dir, task, has_val=has_val, extra_callbacks=[RunDirCheck(run_dir)],
                                macs_per_image=task.precision_macs(module, info))
        what = task.describe(cfg, module, info).get("arch")
        log.info("training %s%s on %s (%s), run folder %s", cfg.task, f" ({what})" if what else "",
                 trainer.strategy.root_device, trainer.precision, run_dir)
        trainer.fit(module, datamodule=data, ckpt_path=str(last) if last else None)
        if last is not None and last.name == "last-upgraded.ckpt":  # today's last.ckpt has replaced it
            last.unlink(missing_ok=True)
        if trainer.is_global_zero:
            finalize_run(run_dir, cfg, task, module, data, trainer.precision, task.monitor(cfg, has_val))
    except BaseException:
        if resume is None and rank_zero:
            _drop_if_empty(run_dir)
        raise
    finally:
        if marker is not None:
            marker.unlink(missing_ok=True)
    return run_dir


def _upgraded_for_resume(checkpoint: dict, cfg: Config, module, path: Path) -> Path:
    """last.ckpt of a run interrupted under an earlier lienzo, upgraded (lienzo.legacy) into a file beside it
    that Lightning resumes from; the original stays as it was."""
    problem = legacy.resume_problem(checkpoint, cfg)
    if problem:
        raise RunError(f"{path}: {problem}")
    checkpoint = legacy.upgrade_checkpoint(checkpoint)
    checkpoint["state_dict"] = legacy.upgrade_state_dict(cfg, module, checkpoint["state_dict"])
    upgraded = path.with_name("last-upgraded.ckpt")
    AtomicCheckpointIO().save_checkpoint(checkpoint, upgraded)
    log.info("%s was written by an earlier lienzo: resuming from its upgraded copy %s", path.name, upgraded.name)
    return upgraded


def _drop_if_empty(run_dir: Path) -> None:
    """A new run that stopped before its first checkpoint holds nothing to resume or look at: remove it,
    so that `lienzo runs` does not list it as interrupted for ever."""
    checkpoints = run_dir / "checkpoints"
    if checkpoints.is_dir() and any(checkpoints.iterdir()):
        return
    shutil.rmtree(run_dir, ignore_errors=True)
    log.warning("removed %s: the run stopped before its first checkpoint", run_dir)
