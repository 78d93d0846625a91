"""The classification LightningModule: cross-entropy training of any registered classifier.

Batches arrive as uint8 images; conversion, augmentation and normalisation happen in the module,
after the batch reached its device, on the whole batch at once.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MeanMetric

from lienzo.data.transforms import BatchAugment, Normalizer, progressive_size, resize
from lienzo.errors import ConfigError
from lienzo.optimizers import Lookahead, build_optimizer, build_scheduler, parameter_groups
from lienzo.tasks.base import TaskModule
from lienzo.tasks.state import capture_rng, complete_saved_epoch, restore_rng
from lienzo.transfer.finetune import assign, frozen_norms_to_eval, parse_groups, set_trainable
from lienzo.transfer.finetune import param_groups as finetune_param_groups


class ClassifyModule(TaskModule):
    """Cross-entropy training of any registered classifier.

    The hyperparameters saved in every checkpoint (`config`, and `info`: class names, input shape,
    mean/std) are enough to rebuild the model for evaluation and prediction.
    """

    def __init__(self, model: nn.Module, config: dict, info: dict):
        super().__init__()
        self.save_hyperparameters(ignore=["model"])
        self.model = model
        self.augment = BatchAugment(config["data"]["augment"], erasing=config["data"]["random_erasing"])
        self.channels_last = config["trainer"]["channels_last"]
        self.progressive = (config["data"].get("progressive_scale"), config["data"].get("progressive_fraction", 0.5))
        self.normalizer = Normalizer(info["mean"], info["std"])
        self.label_smoothing = float(config["optim"]["label_smoothing"])
        self.seed = int(config["run"]["seed"])
        # Running metrics (torchmetrics) reduce across processes under DDP when computed. A step only adds
        # to two sums on the device (~8 µs; a torchmetrics update per step costs ~50 µs, 2 % of a BaseNet
        # step); each epoch hands the process's mean and count to the metric once: the same weighted
        # mean. nan_strategy="disable": no isnan check (a host sync).
        for split in ("train", "val", "test"):
            setattr(self, f"{split}_loss_metric", MeanMetric(nan_strategy="disable"))
            setattr(self, f"{split}_top1_metric", MeanMetric(nan_strategy="disable"))
        self._sums: dict[str, list] = {}
        self._seeded_epoch = -1
        self._test_now = True  # set at each validation (on_validation_epoch_start)
        # Manual optimisation: the step below is the whole loop body, without the closure machinery
        # of automatic optimisation (worth ~8 % on a 1 ms BaseNet step). Precision plugins (fp16 loss
        # scaling) and DDP still act through manual_backward and the LightningOptimizer.
        self.automatic_optimization = False
        self._schedule_interval = "none"
        self.lookahead: Lookahead | None = None
        finetune = config.get("finetune") or {}
        self.ft_groups = parse_groups(finetune.get("groups"))
        self.unfreeze_after = int(finetune.get("unfreeze_after") or 0)
        self._ft_owner = assign(model, self.ft_groups) if (self.ft_groups or self.unfreeze_after) else None

    # -- batches -------------------------------------------------------------------------------
    def on_after_batch_transfer(self, batch, dataloader_idx: int = 0):
        images, labels = batch
        training = self.trainer is not None and self.trainer.training
        if training and self._seeded_epoch != self.current_epoch:
            self._start_epoch()
        if training and self.augment.active:
            x = self.augment.erase(self.normalizer(self.augment(images)))
        else:
            x = self.normalizer(images)  # uint8 → normalised float in one fused op
        if training and self.progressive[0] is not None:
            x = resize(x, [self.train_size(self.current_epoch, side) for side in x.shape[-2:]])
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, labels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def train_size(self, epoch: int, full: int | None = None) -> int:
        """Side length of the training images at `epoch` (data.progressive_scale; full size without it)."""
        full = full or int(self.hparams.info["input_shape"][-1])
        scale, fraction = self.progressive
        return progressive_size(full, epoch, int(self.hparams.config["trainer"]["max_epochs"]), scale, fraction)

    def relative_step_cost(self, epoch: int) -> float:
        """A training step's cost at `epoch` against one at full size (the pixels it convolves), for the
        time estimate under progressive resizing."""
        full = int(self.hparams.info["input_shape"][-1])
        return (self.train_size(epoch, full) / full) ** 2

    def _update(self, split: str, logits, labels, loss) -> None:
        # argmax takes the first of tied maxima, the same tie rule as metrics.target_rank
        n = labels.shape[0]
        loss_sum, correct = loss.detach().float() * n, (logits.detach().argmax(1) == labels).sum()
        sums = self._sums.get(split)
        if sums is None:
            self._sums[split] = [loss_sum, correct, n]
        else:
            sums[0] += loss_sum
            sums[1] += correct
            sums[2] += n

    def _log_epoch(self, split: str) -> dict[str, torch.Tensor]:
        sums = self._sums.pop(split, None)
        if sums is not None:
            loss_sum, correct, n = sums
            getattr(self, f"{split}_loss_metric").update(loss_sum / n, n)
            getattr(self, f"{split}_top1_metric").update(correct.float() / n, n)
        values = {}
        for name in ("loss", "top1"):
            metric = getattr(self, f"{split}_{name}_metric")
            if metric.update_called:
                values[f"{split}_{name}"] = metric.compute()
            metric.reset()
        for name, value in values.items():
            self.log(name, value, prog_bar=name in ("train_loss", "val_loss", "val_top1"), sync_dist=False,
                     add_dataloader_idx=False)
        return values

    # -- steps ---------------------------------------------------------------------------------
    def training_step(self, batch, batch_idx):
        x, y = batch
        optimizer = self.optimizers()
        logits = self.model(x)
        loss = F.cross_entropy(logits, y, label_smoothing=self.label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        optimizer.step()
        if self.lookahead is not None:
            self.lookahead.step()
        if self._schedule_interval == "step":
            self.lr_schedulers().step()
        self._update("train", logits, y, loss)

    def validation_step(self, batch, batch_idx, dataloader_idx: int = 0):
        split = self.trainer.datamodule.eval_splits[dataloader_idx]
        if split == "test" and not self._test_now:
            return
        x, y = batch
        logits = self.model(x)
        self._update(split, logits, y, F.cross_entropy(logits, y))

    def on_validation_epoch_start(self) -> None:
        # Whether this validation scores the test curve: trainer.test_every_epoch true is every epoch, N every
        # N-th epoch and the last (by max_epochs or max_steps; a run that stops early may end without one).
        every = int(self.hparams.config["trainer"].get("test_every_epoch") or 0)
        trainer, epoch = self.trainer, self.current_epoch + 1
        last = (0 < (trainer.max_epochs or 0) <= epoch) or (0 < (trainer.max_steps or 0) <= trainer.global_step)
        self._test_now = every > 0 and (epoch % every == 0 or last)

    # -- epochs --------------------------------------------------------------------------------
    def _start_epoch(self) -> None:
        # At the epoch's first batch (Lightning skips on_train_epoch_start when it resumes): the
        # augmentation's own generator is seeded from (seed, epoch, rank), so a resumed run draws what
        # the uninterrupted one drew; dropout's global generator travels in the checkpoint instead.
        seed = self.seed * 1_000_003 + self.current_epoch + 7919 * self.global_rank
        self.augment.reseed(seed)
        if self._ft_owner is not None:
            set_trainable(self.model, self.ft_groups, self._ft_owner, self.current_epoch, self.unfreeze_after)
            frozen_norms_to_eval(self.model)
        self._seeded_epoch = self.current_epoch

    def train(self, mode: bool = True):
        super().train(mode)
        if mode and self._ft_owner is not None:
            frozen_norms_to_eval(self.model)  # Lightning calls train() after every validation
        return self

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            self._sums.pop("val", None)
            self._sums.pop("test", None)
            return
        values = self._log_epoch("val")
        self._log_epoch("test")  # only when test_every_epoch served it
        if self._schedule_interval == "plateau" and "val_loss" in values:
            self.lr_schedulers().step(values["val_loss"].item())

    def on_train_epoch_end(self) -> None:
        values = self._log_epoch("train")
        if self._schedule_interval == "epoch":
            self.lr_schedulers().step()
        elif self._schedule_interval == "plateau" and not self.trainer.val_dataloaders and "train_loss" in values:
            self.lr_schedulers().step(values["train_loss"].item())

    # -- optimisation --------------------------------------------------------------------------
    def configure_optimizers(self):
        optim_cfg = _Attr(self.hparams.config["optim"])
        if self._ft_owner is not None:
            groups = finetune_param_groups(self.model, self.ft_groups, self._ft_owner, optim_cfg.lr,
                                           optim_cfg.weight_decay)
        else:
            groups = parameter_groups(self.model, optim_cfg.weight_decay)
        optimizer = build_optimizer(groups, optim_cfg)
        if optim_cfg.lookahead_steps:
            self.lookahead = Lookahead([p for g in groups for p in g["params"]], optim_cfg.lookahead_steps,
                                       optim_cfg.lookahead_alpha)
            saved = getattr(self, "_saved_lookahead", None)  # on_load_checkpoint runs before this on resume
            if saved is not None:
                self.lookahead.load_state_dict(saved)
        total = self.trainer.estimated_stepping_batches if optim_cfg.schedule in ("cosine", "onecycle", "linear") else 1
        scheduler, self._schedule_interval = build_scheduler(optimizer, optim_cfg, total)
        # Stepped by this module (manual optimisation); Lightning still saves and restores its state.
        if scheduler is None:
            return optimizer
        interval = "epoch" if self._schedule_interval in ("epoch", "plateau") else "step"
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": interval}}

    # -- state ---------------------------------------------------------------------------------
    def configure_model(self) -> None:
        # Before the strategy wraps the model: DDP lays out its gradient buckets by the parameters' strides
        # when it is built, so converting later makes every all-reduce copy (and warn).
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)

    def setup(self, stage: str) -> None:
        # Networks that start from statistics of the data (AirNet's whitening filters) get them here,
        # before the first step; a resumed run then restores its own over them.
        datamodule = self.trainer.datamodule if self.trainer is not None else None
        if stage == "fit" and hasattr(self.model, "init_from_data") and datamodule is not None:
            images = datamodule.train_arrays.images[:10_000]
            self.model.init_from_data(self.normalizer(images))
        if stage == "fit" and self.progressive[0] is not None:
            self._check_progressive()

    @torch.no_grad()
    def _check_progressive(self) -> None:
        """Progressive resizing needs a network that takes smaller images (global pooling before its head)."""
        channels, height, width = (int(v) for v in self.hparams.info["input_shape"])
        size = (self.train_size(0, height), self.train_size(0, width))
        was_training = self.model.training
        try:
            device = next(self.model.parameters()).device
            self.model.eval()(torch.zeros(2, channels, *size, device=device))
        except RuntimeError:
            arch = self.hparams.config["model"]["arch"]
            raise ConfigError(f"data.progressive_scale: {arch} takes only {height}×{width} images, not the first "
                              f"epoch's {size[0]}×{size[1]} (use a network with global pooling, e.g. airnet or "
                              "resnet18, or set data.progressive_scale=null)") from None
        finally:
            self.model.train(was_training)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # The global generators (dropout, and anything else that draws from them) continue where they were.
        checkpoint["rng_states"] = capture_rng()
        if self.lookahead is not None:
            checkpoint["lookahead"] = self.lookahead.state_dict()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self._saved_lookahead = checkpoint.get("lookahead")
        restore_rng(checkpoint.get("rng_states"))
        complete_saved_epoch(checkpoint)


class _Attr(dict):
    __getattr__ = dict.__getitem__

