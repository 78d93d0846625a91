"""The classification task: what a classify run adds to the spine (its config sections, data, module,
evaluation, metrics.json fields and report)."""

from __future__ import annotations

from pathlib import Path

from lienzo.config import validate_finetune
from lienzo.errors import ConfigError
from lienzo.models.build import build_model
from lienzo.report.content import Report
from lienzo.tasks.base import Task
from lienzo.tasks.classify.config import HINTS, SECTIONS
from lienzo.tasks.classify.data import ClassificationData
from lienzo.tasks.classify.inference import evaluate_arrays
from lienzo.tasks.classify.module import ClassifyModule
from lienzo.transfer.finetune import parse_groups, prepare

INFO_KEYS = ("class_names", "input_shape", "mean", "std")


class Classify(Task):
    """Train a classifier from scratch or from pretrained weights; top-1/top-5/per-class evaluation."""

    name = "classify"
    main_metric = ("test", "top1", "max")
    config_sections = SECTIONS  # the classify-only keys of data, optim and trainer; finetune
    config_hints = HINTS
    evaluate_keys = ()  # finetune.* shaped the training; evaluating the trained network changes nothing by it
    MONITOR_MODES = {"val_loss": "min", "val_top1": "max", "train_loss": "min"}

    def validate(self, cfg) -> None:
        validate_finetune(cfg.finetune)
        if cfg.trainer.monitor not in self.MONITOR_MODES:
            raise ConfigError(f"trainer.monitor: {cfg.trainer.monitor!r} is not one of {', '.join(self.MONITOR_MODES)}")

    def data_module(self, cfg, info: dict | None = None) -> ClassificationData:
        info = info or {}
        data = ClassificationData(cfg.data, cfg.run.seed, info.get("mean"), info.get("std"))
        data.test_every_epoch = cfg.trainer.test_every_epoch
        return data

    def resume_data(self, data: ClassificationData, epoch: int) -> None:
        data.start_epoch = epoch

    def step_cost(self, module: ClassifyModule, epoch: int) -> float:
        return module.relative_step_cost(epoch)

    def data_info(self, data: ClassificationData) -> dict:
        return {"class_names": list(data.class_names), "input_shape": list(data.input_shape),
                "mean": list(data.mean), "std": list(data.std)}

    def build_module(self, cfg, info: dict, load_weights: bool = True) -> ClassifyModule:
        # Training mode: pretrained backbones arrive in eval mode, and Lightning keeps the mode it finds.
        model = build_model(cfg, len(info["class_names"]), tuple(info["input_shape"]), load_weights).train()
        if cfg.finetune.groups and load_weights:
            prepare(model, parse_groups(cfg.finetune.groups), cfg.run.seed)
        return ClassifyModule(model, cfg.to_dict(), info)

    def callbacks(self, cfg) -> list:
        if cfg.trainer.ema_decay is None:
            return []
        from lightning.pytorch.callbacks import EMAWeightAveraging

        # Lightning's EMA: validation runs on the averaged weights, and checkpoints hold them as their
        # state_dict (the raw weights travel beside them for resuming), so best.ckpt, evaluate and
        # predict all use the average without knowing about it.
        return [EMAWeightAveraging(decay=cfg.trainer.ema_decay)]

    def has_validation(self, data) -> bool:
        return bool(data.val_arrays)

    def monitor(self, cfg, has_val: bool) -> tuple[str, str]:
        if has_val or cfg.trainer.monitor.startswith("train_"):
            return cfg.trainer.monitor, self.MONITOR_MODES[cfg.trainer.monitor]
        return "train_loss", "min"

    def describe(self, cfg, module, info: dict) -> dict:
        return {"arch": cfg.model.arch, "parameters": sum(p.numel() for p in module.model.parameters()),
                **{k: info[k] for k in INFO_KEYS}}

    def evaluate(self, loaded, data, split: str, cfg) -> dict | None:
        arrays = {"train": data.train_arrays, "val": data.val_arrays, "test": data.test_arrays}.get(split)
        if arrays is None or not len(arrays):
            return None
        return evaluate_arrays(loaded, arrays, cfg)

    def summary_line(self, split: str, results: dict) -> str:
        return (f"{split}: top-1 {100 * results['top1']:.2f} %, top-5 {100 * results['top5']:.2f} %, "
                f"cross-entropy {results['cross_entropy'] or float('nan'):.4f}")

    def extra_results(self, run_dir: Path, cfg, loaded) -> dict:
        if not cfg.model.pretrained:
            return {}
        from lienzo.transfer.finetune import weight_movement

        reference = build_model(cfg, len(loaded.info["class_names"]), tuple(loaded.info["input_shape"]), True)
        new = tuple(f"{name}." for name in getattr(reference, "lienzo_new_layers", []))
        return {"weight_movement": weight_movement(
            loaded.model, {k: v for k, v in reference.state_dict().items() if not k.startswith(new)})}

    def report(self, run_dir: Path, cfg, metrics: dict, history: list[dict], data=None,
               extras: dict | None = None) -> Report:
        from lienzo.tasks.classify.report import report_sections

        return report_sections(run_dir, cfg, metrics, data, extras)
