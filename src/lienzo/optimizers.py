"""Optimizers and schedules from the `optim` config section, and Lookahead, for any task.

    optimizer = build_optimizer(parameter_groups(model, cfg.optim.weight_decay), cfg.optim)
    scheduler, interval = build_scheduler(optimizer, cfg.optim, total_steps)
"""

from __future__ import annotations

import logging

import torch
from torch import nn

log = logging.getLogger("lienzo")


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
    betas = tuple(optim_cfg.betas) if optim_cfg.betas else (0.9, 0.999)
    if optim_cfg.name == "adam":
        return torch.optim.Adam(params, lr=optim_cfg.lr, betas=betas)
    return torch.optim.AdamW(params, lr=optim_cfg.lr, betas=betas)


def build_scheduler(optimizer, optim_cfg, total_steps: int):
    """(scheduler, interval) for `optim.schedule`; interval is "none", "epoch", "step" or "plateau"."""
    schedule = optim_cfg.schedule
    if schedule == "none":
        return None, "none"
    if schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, optim_cfg.step_size, optim_cfg.gamma), "epoch"
    if schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=optim_cfg.gamma, patience=2), "plateau"
    total = max(int(total_steps), 1)
    if schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total), "step"
    if schedule == "linear":
        return warmup_linear_decay(optimizer, max(int(optim_cfg.warmup_fraction * total), 1), total), "step"
    if total < 3:  # one cycle needs a step up and a step down: a run this short keeps its rate
        log.warning("optim.schedule=onecycle over %d step(s): too few for a cycle; the rate stays at optim.lr", total)
        return None, "none"
    # OneCycleLR divides by each phase's length: both keep at least one step, whatever warmup_fraction says
    pct_start = min(max(optim_cfg.warmup_fraction, 2 / total), (total - 1) / total)
    return torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=[g["lr"] for g in optimizer.param_groups], total_steps=total,
        pct_start=pct_start, cycle_momentum=optim_cfg.name == "sgd" and optim_cfg.momentum > 0,
    ), "step"


def warmup_linear_decay(optimizer, warmup: int, total: int) -> torch.optim.lr_scheduler.SequentialLR:
    """Warm up linearly, then decay linearly to 0, stepped once per optimizer step: the base rate times
    (step + 1)/warmup for the first `warmup` steps (the full rate at step warmup − 1), then
    (total − step)/(total − warmup) from the full rate at step `warmup` to 0 after the last step (`total`).

        warmup=2, total=6: 0.5, 1, 1, 0.75, 0.5, 0.25, then 0
    """
    lr = torch.optim.lr_scheduler
    warm = lr.LinearLR(optimizer, start_factor=1 / warmup, end_factor=1.0, total_iters=max(warmup - 1, 1))
    decay = lr.LinearLR(optimizer, start_factor=1.0, end_factor=0.0, total_iters=max(total - warmup, 1))
    return lr.SequentialLR(optimizer, [warm, decay], milestones=[warmup])


class Lookahead:
    """Lookahead (Zhang et al., 2019): slow weights that follow the optimizer's fast ones every k steps,
    slow += alpha·(fast − slow), after which the fast weights restart from the slow ones.

    Call `step()` after every optimizer step; its state travels in checkpoints through
    `state_dict()`/`load_state_dict()`. Batch-norm statistics are not parameters and are left alone.

    Not timm's `timm.optim.Lookahead`: as in the paper, the slow weights start at the initial weights, while
    timm's start at the k-th step's, so its first sync moves nothing (tests/test_optimizers.py shows it)."""

    def __init__(self, params, k: int = 5, alpha: float = 0.5):
        if k < 1 or not 0.0 < alpha <= 1.0:
            raise ValueError(f"lookahead needs k >= 1 and 0 < alpha <= 1, got k={k}, alpha={alpha}")
        self.params = [p for p in params if p.requires_grad]
        self.k, self.alpha, self.steps = k, alpha, 0
        self.slow = [p.detach().clone() for p in self.params]

    @torch.no_grad()
    def step(self) -> bool:
        """Count a step; on every k-th, move the slow weights and reset the fast ones. True when it synced."""
        self.steps += 1
        if self.steps % self.k:
            return False
        for fast, slow in zip(self.params, self.slow):
            slow.add_(fast.detach() - slow, alpha=self.alpha)
            fast.copy_(slow)
        return True

    def state_dict(self) -> dict:
        return {"steps": self.steps, "slow": [s.clone() for s in self.slow]}

    def load_state_dict(self, state: dict) -> None:
        self.steps = int(state["steps"])
        for slow, saved in zip(self.slow, state["slow"]):
            slow.copy_(saved)
