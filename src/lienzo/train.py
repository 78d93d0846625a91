"""Training, configured in one place: the Lightning Trainer with lienzo's callbacks and run folder.

    run_dir = train(load_config("configs/fashion_fast.yaml"))
    run_dir = train(resume="runs/fashion_fast")
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import Checkpoint, EarlyStopping, EMAWeightAveraging, ModelCheckpoint, TQDMProgressBar
from lightning.pytorch.plugins.io import TorchCheckpointIO

from .config import Config, dump_config, load_config
from .data.module import ClassificationData
from .errors import ConfigError, ModelError, RunError
from .hardware import resolve_accelerator, resolve_precision
from .models import create_model
from .runs import CONFIG_FILE, HISTORY_FILE, atomic_write_text, checkpoint_path, new_run_dir, write_history
from .summary import macs_for_precision
from .tasks.classify import ClassifyTask

log = logging.getLogger("lienzo")


class AtomicCheckpointIO(TorchCheckpointIO):
    """Checkpoints go to a temporary file first and are renamed into place: a kill -9 mid-write
    leaves the previous checkpoint intact."""

    def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        torch.save(checkpoint, tmp)
        os.replace(tmp, path)


class HistoryWriter(Checkpoint):
    """Writes history.csv at the end of every epoch; its rows travel in the checkpoint, so a
    resumed run continues the same history. (A Checkpoint subclass so that Lightning calls it
    after the LightningModule logged the epoch's training metrics, and before ModelCheckpoint.)"""

    def __init__(self, path: Path):
        self.path = path
        self.rows: list[dict] = []
        self._start = time.perf_counter()

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        metrics = trainer.callback_metrics
        row = {"epoch": trainer.current_epoch + 1}
        for name in ("train_loss", "train_top1", "val_loss", "val_top1"):
            row[name] = float(metrics[name]) if name in metrics else float("nan")
        lr = getattr(pl_module, "epoch_lr", None)
        row["lr"] = lr if lr is not None else trainer.optimizers[0].param_groups[0]["lr"]
        row["seconds"] = time.perf_counter() - self._start
        self.rows = [r for r in self.rows if r["epoch"] < row["epoch"]] + [row]
        if trainer.is_global_zero:
            write_history(self.path, self.rows)

    def state_dict(self) -> dict:
        return {"rows": self.rows}

    def load_state_dict(self, state_dict: dict) -> None:
        self.rows = list(state_dict.get("rows", []))


class ResumeHint(L.Callback):
    def __init__(self, run_dir: Path):
        self.run_dir = run_dir

    def on_exception(self, trainer, pl_module, exception) -> None:
        if isinstance(exception, KeyboardInterrupt) and trainer.is_global_zero:
            log.warning("interrupted; continue with: lienzo train --resume %s", self.run_dir)


def build_trainer(cfg: Config, run_dir: Path, has_val: bool, extra_callbacks=(), macs_per_image: float | None = None,
                  **overrides) -> L.Trainer:
    """The Trainer every lienzo verb uses: precision, devices, checkpoints, early stopping, progress.

    `macs_per_image` (the model's size) lets precision auto keep tiny models in fp32 on the CPU."""
    tcfg = cfg.trainer
    monitor = tcfg.monitor if has_val else "train_loss"
    mode = "max" if monitor.endswith("top1") else "min"
    callbacks = [HistoryWriter(run_dir / HISTORY_FILE), ResumeHint(run_dir), *extra_callbacks]
    if tcfg.ema_decay is not None:
        # Lightning's EMA: validation runs on the averaged weights, and checkpoints hold them as their
        # state_dict (the raw weights travel beside them for resuming), so best.ckpt, evaluate and
        # predict all use the average without knowing about it.
        callbacks.append(EMAWeightAveraging(decay=tcfg.ema_decay))
    callbacks.append(ModelCheckpoint(
        dirpath=run_dir / "checkpoints", filename="best", monitor=monitor, mode=mode, save_last=True,
        save_on_train_epoch_end=True, enable_version_counter=False, auto_insert_metric_name=False,
    ))
    if tcfg.early_stopping_patience:
        callbacks.append(EarlyStopping(monitor=monitor, mode=mode, patience=tcfg.early_stopping_patience,
                                       check_on_train_epoch_end=True))
    if tcfg.progress:
        callbacks.append(TQDMProgressBar(refresh_rate=25))
    accelerator = resolve_accelerator(tcfg.accelerator)
    kwargs = dict(
        accelerator=accelerator,
        devices=tcfg.devices,
        num_nodes=tcfg.num_nodes,
        strategy=tcfg.strategy,
        precision=resolve_precision(tcfg.precision, tcfg.accelerator, macs_per_image),
        max_epochs=tcfg.max_epochs,
        callbacks=callbacks,
        logger=False,
        plugins=[AtomicCheckpointIO()],
        num_sanity_val_steps=0,
        enable_model_summary=False,
        enable_progress_bar=tcfg.progress,
        default_root_dir=str(run_dir),
        benchmark=accelerator == "gpu",
    )
    kwargs.update(overrides)
    return L.Trainer(**kwargs)


def _is_launcher_child() -> bool:
    """True in the extra processes DDP starts (they must join the run folder rank 0 made)."""
    return int(os.environ.get("LOCAL_RANK", 0)) > 0 or int(os.environ.get("NODE_RANK", 0)) > 0


def configure_threads(cfg: Config) -> None:
    if cfg.trainer.threads:
        torch.set_num_threads(cfg.trainer.threads)


def build_model(cfg: Config, num_classes: int, input_shape, load_weights: bool = True) -> torch.nn.Module:
    """The network `model.*` describes; with `model.pretrained`, started from those weights (when
    load_weights), its last layer and first convolution adapted to the data's classes and channels."""
    channels, height, width = input_shape
    pretrained = cfg.model.pretrained
    if cfg.model.arch.startswith("timm:"):  # timm's models, randomly initialised or from a local weights file
        from .transfer.backbones import load_backbone

        return load_backbone(cfg.model.arch, pretrained if load_weights else None, num_classes, channels).model
    kwargs = {"variant": cfg.model.variant} if cfg.model.variant != "auto" else {}
    if pretrained is None or (not load_weights and Path(pretrained).is_dir()):
        return create_model(cfg.model.arch, num_classes=num_classes, in_chans=channels, input_size=(height, width),
                            dropout=cfg.model.dropout, **kwargs)
    from .transfer.backbones import TORCHVISION_BACKBONES, adapt_input, load_backbone, load_matching

    if Path(pretrained).is_dir():  # a lienzo run: its architecture, its weights, a new head
        backbone = load_backbone(pretrained, num_classes=num_classes)
        if backbone.name != cfg.model.arch:
            raise ConfigError(f"model.pretrained: {pretrained} is a {backbone.name}, but model.arch is {cfg.model.arch}")
        adapt_input(backbone.model, channels)
        return backbone.model
    if cfg.model.arch in TORCHVISION_BACKBONES:
        return load_backbone(cfg.model.arch, pretrained if load_weights else None, num_classes, channels).model
    model = create_model(cfg.model.arch, num_classes=num_classes, in_chans=channels, input_size=(height, width),
                         dropout=cfg.model.dropout, **kwargs)
    if load_weights:
        load_matching(model, pretrained)
    return model


def build_task(cfg: Config, data: ClassificationData, load_weights: bool = True) -> ClassifyTask:
    # Training mode: pretrained backbones arrive in eval mode, and Lightning keeps the mode it finds.
    model = build_model(cfg, len(data.class_names), data.input_shape, load_weights).train()
    if cfg.finetune.groups:
        from .transfer.finetune import parse_groups, prepare

        prepare(model, parse_groups(cfg.finetune.groups), cfg.run.seed)
    return ClassifyTask(model, cfg.to_dict(), data.class_names, data.input_shape, data.mean, data.std)


def train(cfg: Config | None = None, *, resume: str | Path | None = None, overrides: list[str] = ()) -> Path:
    """Train a classifier; returns the run folder. With `resume`, continue that run from last.ckpt."""
    from .evaluate import finalize_run

    if resume is not None:
        run_dir = Path(resume)
        last = checkpoint_path(run_dir, "last")
        cfg = load_config(run_dir / CONFIG_FILE, overrides)
        state = torch.load(last, map_location="cpu", weights_only=False)
        hparams = state["hyper_parameters"]
        data = ClassificationData(cfg.data, cfg.run.seed, hparams["mean"], hparams["std"])
        data.start_epoch = state["epoch"] + 1  # saved at the end of that (0-based) epoch
        log.info("resuming %s from %s", run_dir, last.name)
    else:
        if cfg is None:
            raise RunError("train needs a config or a run to resume")
        last = None
        data = ClassificationData(cfg.data, cfg.run.seed)
    configure_threads(cfg)
    L.seed_everything(cfg.run.seed, workers=True, verbose=False)
    data.setup("fit")
    task = build_task(cfg, data)
    if resume is None:
        if _is_launcher_child():
            run_dir = Path(os.environ.get("LIENZO_RUN_DIR", Path(cfg.run.dir) / (cfg.run.name or "run")))
        else:
            run_dir = new_run_dir(cfg.run.dir, cfg.run.name or "run")
            cfg.run.name = run_dir.name
    if not _is_launcher_child():
        atomic_write_text(run_dir / CONFIG_FILE, dump_config(cfg))
        os.environ["LIENZO_RUN_DIR"] = str(run_dir)
    trainer = build_trainer(cfg, run_dir, has_val=data.val_arrays is not None,
                            macs_per_image=macs_for_precision(task.model, data.input_shape))
    log.info("training %s on %s (%s), run folder %s", cfg.model.arch, trainer.strategy.root_device,
             trainer.precision, run_dir)
    try:
        trainer.fit(task, datamodule=data, ckpt_path=str(last) if last else None)
    except RuntimeError as err:
        if last is not None and "state_dict" in str(err):
            raise ModelError(f"{last}: checkpoint does not fit {cfg.model.arch} with {len(data.class_names)} "
                             f"classes ({str(err).splitlines()[0]})") from None
        raise
    if trainer.is_global_zero:
        finalize_run(run_dir, cfg, data, trainer.precision)
    return run_dir
