"""The face every task shows the trainer, the run folder and the report.

A task is one class, registered with `@register_task`, that says everything which differs between
tasks; `lienzo.train`, `lienzo.evaluate` and `lienzo.runs` use only this (the report page renders the
`Report` that `report` returns, as data, and knows no task):

    @register_task
    class Autoencode(Task):
        name = "autoencode"
        config_sections = {"ae": AutoencoderConfig}     # extra typed config sections ({} for none)
        main_metric = ("test", "mse", "min")            # what `lienzo runs` shows

        def data_module(self, cfg, info=None): ...      # a LightningDataModule
        def data_info(self, data): ...                  # JSON-able facts saved with the run (shapes, stats)
        def build_module(self, cfg, info, load_weights=True): ...   # the LightningModule
        def monitor(self, cfg, has_val): ...            # (metric, "min" | "max") for best.ckpt
        def evaluate(self, loaded, data, split, cfg): ...           # results dict for one split
        def report(self, run_dir, cfg, metrics, history, data, extras): ...  # cards and sections

The LightningModule's checkpoint is the run's memory: its `hyper_parameters` hold the config
(`config`) and the data facts (`info`), and its state_dict every network of the task, so a
run folder can always be rebuilt with `build_module(cfg, info, load_weights=False)`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import lightning as L
from lightning.fabric.utilities.exceptions import MisconfigurationException

# what `Task.report` returns: the page's data (sections of tables, text, figures), rendered by lienzo.report
from lienzo.report.content import Report


# Precisions whose backward is a plain `loss.backward()` (no loss scaling)
PLAIN_BACKWARD_PRECISIONS = ("32-true", "64-true", "bf16-mixed", "bf16-true")
BACKWARD_HOOKS = ("on_before_backward", "on_after_backward", "backward")


class TaskModule(L.LightningModule):
    """The LightningModule every task's module builds on: Lightning's loop at a lower cost per step, which
    shows on small networks (a BaseNet step at batch 32 is ~2 ms on 2 CPU cores).

    - `manual_backward` is `loss.backward()` when nothing would act on it: one device, no loss scaling, and
      no callback or module hook on backward. Otherwise (DDP, fp16, a callback watching gradients) it is
      Lightning's, unchanged. Measured: +8 % BaseNet steps/s at batch 32 (benchmarks/RESULTS.md).
    - Lightning names the running hook in `_current_fx_name` around every hook call (~30 times a step);
      it is a plain string, set without nn.Module's parameter/buffer/submodule checks (+7 %)."""

    _plain_backward_for = None  # the trainer the decision below was taken for

    def __setattr__(self, name: str, value) -> None:
        if name == "_current_fx_name":
            object.__setattr__(self, name, value)
            return
        super().__setattr__(name, value)

    def manual_backward(self, loss, *args, **kwargs) -> None:
        trainer = self.trainer
        if self._plain_backward_for is not trainer:
            self._plain_backward = plain_backward(trainer, self)
            self._plain_backward_for = trainer
        if self._plain_backward:
            loss.backward(*args, **kwargs)
        else:
            super().manual_backward(loss, *args, **kwargs)


def plain_backward(trainer, module) -> bool:
    """Whether Lightning's backward would be `loss.backward()` and nothing else in this fit."""
    from lightning.pytorch.callbacks import Callback
    from lightning.pytorch.strategies import SingleDeviceStrategy
    from lightning.pytorch.utilities.model_helpers import is_overridden

    if type(trainer.strategy) is not SingleDeviceStrategy or trainer.precision not in PLAIN_BACKWARD_PRECISIONS:
        return False
    if any(is_overridden(hook, module, parent=L.LightningModule) for hook in BACKWARD_HOOKS):
        return False
    return not any(is_overridden(hook, callback, parent=Callback) for callback in trainer.callbacks
                   for hook in BACKWARD_HOOKS if hasattr(Callback, hook))


class Task:
    """Base class of tasks: override what your task needs; the defaults suit a one-network task."""

    name: ClassVar[str] = ""
    config_sections: ClassVar[dict[str, type]] = {}
    # Keys of other tasks set on this task's runs: what to use instead ({"trainer.ema_decay": "use gan.ema_decay"});
    # a key of another task without a hint is "a <task> run does not use it".
    config_hints: ClassVar[dict[str, str]] = {}
    # (split, key, "min" | "max"): the headline number of a finished run, e.g. ("test", "top1", "max").
    main_metric: ClassVar[tuple[str, str, str]] = ("test", "loss", "min")
    # The config key `lienzo evaluate --n` sets (samples drawn by a generative task); None: no --n.
    sample_count_key: ClassVar[str | None] = None
    sample_count_default: ClassVar[int | None] = None  # what `lienzo evaluate` draws without --n
    # The keys of the task's own sections `lienzo evaluate RUN key=value` may change (the rest made the networks
    # and stay as trained); None: any of them.
    evaluate_keys: ClassVar[tuple[str, ...] | None] = None

    def headline(self, cfg) -> tuple[str, str, str]:
        """The headline number of a run of this config (`main_metric` unless it depends on the config)."""
        return self.main_metric

    def validate(self, cfg) -> None:
        """Check the config's values this task depends on; raise ConfigError naming the key."""

    def data_module(self, cfg, info: dict | None = None):
        """The LightningDataModule for `cfg.data`; `info` (from a saved run) fixes what the run learnt
        from its training data (normalisation statistics, vocabulary), so evaluation reuses it."""
        raise NotImplementedError

    def data_info(self, data) -> dict:
        """JSON-able facts about the (set-up) data that the networks depend on; saved in checkpoints."""
        return {}

    def build_module(self, cfg, info: dict, load_weights: bool = True):
        """The LightningModule for this config; with load_weights=False, no pretrained weights are read
        (the checkpoint's state_dict is loaded over it)."""
        raise NotImplementedError

    def resume_data(self, data, epoch: int) -> None:
        """A resumed run starts at `epoch` (0-based): data whose shuffles replay from (seed, epoch) starts
        there, so the resumed run sees the batches the uninterrupted one would have."""

    def step_cost(self, module, epoch: int) -> float:
        """What a training step of `epoch` costs relative to others (1.0: all alike), for the time estimate
        of tasks whose steps grow (progressive resizing)."""
        return 1.0

    def has_validation(self, data) -> bool:
        """Whether the (set-up) data module has a validation split to watch."""
        try:
            return bool(data.val_dataloader())
        except MisconfigurationException:  # Lightning's default val_dataloader: not implemented
            return False

    def monitor(self, cfg, has_val: bool) -> tuple[str, str]:
        """The logged metric best.ckpt (and early stopping) watch, and whether lower or higher is better."""
        return ("val_loss", "min") if has_val else ("train_loss", "min")

    def precision_macs(self, module, info: dict) -> float | None:
        """The work of one image through the task's networks, so that precision auto keeps tiny models in
        fp32 on the CPU (where bf16's casts cost more than they save); None: no opinion."""
        from lienzo.models.summary import macs_for_precision

        shape = info.get("input_shape")
        return macs_for_precision(module, shape) if shape else None

    def trainer_kwargs(self, cfg) -> dict:
        """Lightning Trainer arguments this task needs beyond the config's (e.g. a DDP flavour)."""
        return {}

    def callbacks(self, cfg) -> list:
        """Lightning callbacks this task's settings ask for (a moving average of the weights, ...), added to
        the spine's own (history, checkpoints, early stopping, progress)."""
        return []

    def describe(self, cfg, module, info: dict) -> dict:
        """Top-level facts for metrics.json beside the envelope (architecture, parameters, ...)."""
        networks = {name: sum(p.numel() for p in net.parameters()) for name, net in module.named_children()
                    if any(True for _ in net.parameters())}
        return {"parameters": sum(networks.values()), "networks": networks}

    def check_evaluate(self, cfg, split: str) -> None:
        """`lienzo evaluate` of a run of this task on `split` with `cfg`: raise ConfigError for what cannot be
        evaluated (a split the task never scores, a missing setting) before any data is read."""

    def evaluate(self, loaded, data, split: str, cfg) -> dict | None:
        """Results for one split of `data` (None when the data has no such split). Keys starting with
        "_" are kept in memory for the report and never written."""
        raise NotImplementedError

    def summary_line(self, split: str, results: dict) -> str:
        """One log line for a split's results."""
        shown = [f"{k} {v:.4g}" for k, v in results.items() if isinstance(v, float)][:4]
        return f"{split}: " + ", ".join(shown)

    def extra_results(self, run_dir: Path, cfg, loaded) -> dict[str, Any]:
        """More top-level entries for metrics.json after the splits (e.g. weight movement)."""
        return {}

    def report(self, run_dir: Path, cfg, metrics: dict, history: list[dict], data=None,
               extras: dict | None = None) -> Report:
        """Cards and sections of report.html; `extras` holds the "_" entries of fresh results (or is
        None when the page is re-drawn from the folder alone)."""
        return Report()
