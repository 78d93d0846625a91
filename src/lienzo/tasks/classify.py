"""The classification task: a plain model, its loss, its metrics and its optimizer, as a LightningModule.

Batches arrive as uint8 images; conversion, augmentation and normalisation happen here, after the
batch reached its device, on the whole batch at once.
"""

from __future__ import annotations

import random

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data.transforms import BatchAugment, Normalizer
from ..transfer.finetune import assign, frozen_norms_to_eval, parse_groups, set_trainable
from ..transfer.finetune import param_groups as finetune_param_groups


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on weights of convolutions and linear layers, none on biases and norm layers."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (no_decay if param.ndim <= 1 else decay).append(param)
    return [g for g in ({"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0})
            if g["params"]]


def build_optimizer(params, optim_cfg) -> torch.optim.Optimizer:
    if optim_cfg.name == "sgd":
        return torch.optim.SGD(params, lr=optim_cfg.lr, momentum=optim_cfg.momentum,
                               nesterov=optim_cfg.nesterov and optim_cfg.momentum > 0)
    if optim_cfg.name == "adam":
        return torch.optim.Adam(params, lr=optim_cfg.lr)
    return torch.optim.AdamW(params, lr=optim_cfg.lr)


class ClassifyTask(L.LightningModule):
    """Cross-entropy training of any registered classifier.

    The hyperparameters saved in every checkpoint (config, class names, input shape, mean/std)
    are enough to rebuild the model for evaluation and prediction.
    """

    def __init__(self, model: nn.Module, config: dict, class_names: list[str], input_shape, mean, std):
        super().__init__()
        self.save_hyperparameters(ignore=["model"])
        self.model = model
        self.augment = BatchAugment(config["data"]["augment"], erasing=config["data"]["random_erasing"])
        self.channels_last = config["trainer"]["channels_last"]
        self.normalizer = Normalizer(mean, std)
        self.label_smoothing = float(config["optim"]["label_smoothing"])
        self._sums: dict[str, list] = {}
        self._seeded_epoch = -1
        # Manual optimisation: the step below is the whole loop body, without the closure machinery
        # of automatic optimisation (worth ~8 % on a 1 ms BaseNet step). Precision plugins (fp16 loss
        # scaling) and DDP still act through manual_backward and the LightningOptimizer.
        self.automatic_optimization = False
        self._schedule_interval = "none"
        self.epoch_lr: float | None = None
        finetune = config.get("finetune") or {}
        self.ft_groups = parse_groups(finetune.get("groups"))
        self.unfreeze_after = int(finetune.get("unfreeze_after") or 0)
        self._ft_owner = assign(model, self.ft_groups) if (self.ft_groups or self.unfreeze_after) else None

    # -- batches -------------------------------------------------------------------------------
    def on_after_batch_transfer(self, batch, dataloader_idx: int = 0):
        images, labels = batch
        training = self.trainer is not None and self.trainer.training
        if training and self._seeded_epoch != self.current_epoch:
            self._seed_epoch()
            self._apply_unfreezing()
        if training and self.augment.active:
            x = self.augment.erase(self.normalizer(self.augment(images)))
        else:
            x = self.normalizer(images)  # uint8 → normalised float in one fused op
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, labels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def _accumulate(self, prefix: str, logits, labels, loss) -> None:
        # Sums stay on the device (no .item(), a host sync, per step); the count is known on the host.
        # argmax takes the first of tied maxima, the same tie rule as metrics.target_rank.
        n = labels.shape[0]
        loss_sum = loss.detach().float() * n
        correct = (logits.detach().argmax(1) == labels).sum()
        sums = self._sums.get(prefix)
        if sums is None:
            self._sums[prefix] = [loss_sum, correct, n]
        else:
            sums[0] += loss_sum
            sums[1] += correct
            sums[2] += n

    def _epoch_means(self, prefix: str) -> dict[str, torch.Tensor]:
        sums = self._sums.pop(prefix, None)
        if sums is None:
            return {}
        loss_sum, correct, n = sums
        local = torch.stack([loss_sum.float(), correct.float(), loss_sum.new_tensor(float(n))])
        total = self.all_gather(local).reshape(-1, 3).sum(0)
        return {f"{prefix}_loss": total[0] / total[2], f"{prefix}_top1": total[1] / total[2]}

    # -- steps ---------------------------------------------------------------------------------
    def training_step(self, batch, batch_idx):
        x, y = batch
        optimizer = self.optimizers()
        logits = self.model(x)
        loss = F.cross_entropy(logits, y, label_smoothing=self.label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        optimizer.step()
        if self._schedule_interval == "step":
            self.lr_schedulers().step()
        self._accumulate("train", logits, y, loss)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self.model(x)
        self._accumulate("val", logits, y, F.cross_entropy(logits, y))

    # -- epochs --------------------------------------------------------------------------------
    def _seed_epoch(self) -> None:
        # Every epoch's randomness (augmentation, dropout) is a function of (seed, epoch) alone, so a
        # run resumed from an epoch-end checkpoint replays exactly what the uninterrupted run did.
        # Done at the epoch's first batch: Lightning skips on_train_epoch_start when it resumes.
        seed = self.hparams.config["run"]["seed"] * 1_000_003 + self.current_epoch + 7919 * self.global_rank
        torch.manual_seed(seed)
        np.random.seed(seed % 2**32)
        random.seed(seed)
        self._seeded_epoch = self.current_epoch

    def _apply_unfreezing(self) -> None:
        # At the epoch's first batch (a resumed run skips on_train_epoch_start), like the seeding above.
        if self._ft_owner is not None:
            set_trainable(self.model, self.ft_groups, self._ft_owner, self.current_epoch, self.unfreeze_after)
            frozen_norms_to_eval(self.model)

    def train(self, mode: bool = True):
        super().train(mode)
        if mode and self._ft_owner is not None:
            frozen_norms_to_eval(self.model)  # Lightning calls train() after every validation
        return self

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            self._sums.clear()
            return
        means = self._epoch_means("val")
        for name, value in means.items():
            self.log(name, value, prog_bar=True)
        if self._schedule_interval == "plateau" and "val_loss" in means:
            self.lr_schedulers().step(means["val_loss"].item())

    def on_train_epoch_end(self) -> None:
        means = self._epoch_means("train")
        for name, value in means.items():
            self.log(name, value, prog_bar=name == "train_loss")
        # The rate the epoch's last step used, for history.csv (the schedule moves on just below,
        # so that the epoch-end checkpoint already holds the next epoch's schedule state).
        self.epoch_lr = self.trainer.optimizers[0].param_groups[0]["lr"]
        if self._schedule_interval == "epoch":
            self.lr_schedulers().step()
        elif self._schedule_interval == "plateau" and not self.trainer.val_dataloaders and "train_loss" in means:
            self.lr_schedulers().step(means["train_loss"].item())

    # -- optimisation --------------------------------------------------------------------------
    def configure_optimizers(self):
        optim_cfg = _Attr(self.hparams.config["optim"])
        if self._ft_owner is not None:
            groups = finetune_param_groups(self.model, self.ft_groups, self._ft_owner, optim_cfg.lr, optim_cfg.weight_decay)
        else:
            groups = parameter_groups(self.model, optim_cfg.weight_decay)
        optimizer = build_optimizer(groups, optim_cfg)
        schedule = optim_cfg.schedule
        # Stepped by this module (manual optimisation); Lightning still saves and restores its state.
        self._schedule_interval = {"none": "none", "step": "epoch", "plateau": "plateau"}.get(schedule, "step")
        if schedule == "none":
            return optimizer
        if schedule == "step":
            scheduler = torch.optim.lr_scheduler.StepLR(optimizer, optim_cfg.step_size, optim_cfg.gamma)
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}
        if schedule == "plateau":
            scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=optim_cfg.gamma, patience=2)
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler}}
        total = int(self.trainer.estimated_stepping_batches)
        if schedule == "cosine":
            scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(total, 1))
        else:
            scheduler = torch.optim.lr_scheduler.OneCycleLR(
                optimizer, max_lr=[g["lr"] for g in optimizer.param_groups], total_steps=max(total, 1), pct_start=optim_cfg.warmup_fraction,
                cycle_momentum=optim_cfg.name == "sgd" and optim_cfg.momentum > 0,
            )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    # -- state ---------------------------------------------------------------------------------
    def configure_model(self) -> None:
        # Before the strategy wraps the model: DDP lays out its gradient buckets by the parameters' strides
        # when it is built, so converting later makes every all-reduce copy (and warn).
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)


class _Attr(dict):
    __getattr__ = dict.__getitem__
