"""Old runs, upgraded in one place, at load time: what runs written by earlier lienzo versions look like,
and how their checkpoints become today's. A run trained today never passes through here: its checkpoints
carry `FORMAT` and load as they are.

    if not legacy.is_current(checkpoint):
        checkpoint = legacy.upgrade_checkpoint(checkpoint)         # task, info: today's places
        cfg = legacy.upgrade_config(cfg, checkpoint["state_dict"])  # before the networks are built
        state = legacy.upgrade_state_dict(cfg, module, state)       # after: names the networks know

What changed, oldest first:
- runs before tasks and the metrics.json envelope were all classify runs, with the data facts at the top of
  the checkpoint's hyper_parameters and top-1 on the test split as their headline;
- `alexnet` fine-tuned from torchvision's AlexNet weights before `alexnet_tv` existed was torchvision's layout;
- runs fine-tuned from torchvision weights before lienzo built those networks itself hold torchvision's
  module names (features.0, classifier.6);
- GAN runs before the generator's moving average was torch's AveragedModel (format 2 and earlier) hold it
  as a plain copy of the generator (`generator_ema.*`).
"""

from __future__ import annotations

import logging
from dataclasses import replace

log = logging.getLogger("lienzo")

FORMAT_KEY = "lienzo_format"  # in every checkpoint lienzo writes
FORMAT = 3  # 3: checkpoints that need no upgrade (2: the GAN's average a plain copy; 1, or no key: anything earlier)

LEGACY_TASK = "classify"
LEGACY_INFO_KEYS = ("class_names", "input_shape", "mean", "std")
LEGACY_MAIN_METRIC = ("test", "top1", "max")


def stamp(checkpoint: dict) -> dict:
    """Mark a checkpoint being written as today's format."""
    checkpoint[FORMAT_KEY] = FORMAT
    return checkpoint


def is_current(checkpoint: dict) -> bool:
    return checkpoint.get(FORMAT_KEY, 1) >= FORMAT


def info_of(hparams: dict) -> dict:
    """The data facts a checkpoint's task saved (`info`); checkpoints written before there was an `info`
    kept them at the top level."""
    if "info" in hparams:
        return dict(hparams["info"])
    return {k: hparams[k] for k in LEGACY_INFO_KEYS if k in hparams}


def upgrade_checkpoint(checkpoint: dict) -> dict:
    """An old checkpoint's hyper_parameters in today's places: the data facts under `info`, the task named."""
    hp = dict(checkpoint.get("hyper_parameters") or {})
    hp["info"] = info_of(hp)
    hp["config"] = {"task": LEGACY_TASK, **(hp.get("config") or {})}
    return {**checkpoint, "hyper_parameters": hp}


def _network_state(state: dict, prefix: str = "model.") -> dict:
    return {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}


def upgrade_config(cfg, state: dict):
    """An old run's config in today's terms, given its state_dict (before its networks are built)."""
    if cfg.task == "classify":
        cfg = upgrade_classifier_config(cfg, _network_state(state))
    return cfg


def upgrade_classifier_config(cfg, network_state: dict):
    """A run of `alexnet` fine-tuned from torchvision's AlexNet weights before `alexnet_tv` existed was
    torchvision's layout, and is rebuilt as `alexnet_tv`, the network its tensors (without the `model.`
    prefix) hold."""
    from lienzo.models.pretrained import NAMESAKES, holds_namesake

    arch = cfg.model.arch
    if arch in NAMESAKES and cfg.model.pretrained and holds_namesake(arch, network_state):
        log.info("%s with torchvision's weights (saved before %s existed): rebuilt as %s", arch,
                 NAMESAKES[arch], NAMESAKES[arch])
        cfg.model = replace(cfg.model, arch=NAMESAKES[arch])
    return cfg


def upgrade_state_dict(cfg, module, state: dict) -> dict:
    """An old run's state_dict in the names of today's networks (`module`, built from the upgraded config)."""
    if cfg.task == "classify":
        renamed = upgrade_classifier_state(cfg.model.arch, module.model, _network_state(state))
        state = {**{k: v for k, v in state.items() if not k.startswith("model.")},
                 **{f"model.{k}": v for k, v in renamed.items()}}
    if cfg.task == "generate":
        state = upgrade_generator_average(state)
    return state


def upgrade_classifier_state(arch: str, model, network_state: dict) -> dict:
    """Torchvision's module names (features.0, classifier.6) of runs fine-tuned before lienzo built those
    networks itself, renamed to lienzo's."""
    from lienzo.models.pretrained import to_lienzo_names

    return to_lienzo_names(arch, model, network_state)


def upgrade_generator_average(state: dict) -> dict:
    """The GAN's moving average saved as a plain copy of the generator (`generator_ema.<name>`), in the names of
    torch's AveragedModel: `generator_ema.module.<name>`, and its update count `generator_ema.n_averaged`
    (any count above 0: the average exists and goes on averaging; the old checkpoints did not keep one)."""
    prefix = "generator_ema."
    if not any(k.startswith(prefix) for k in state) or f"{prefix}n_averaged" in state:
        return state
    import torch

    upgraded = {(f"{prefix}module.{k.removeprefix(prefix)}" if k.startswith(prefix) else k): v for k, v in state.items()}
    upgraded[f"{prefix}n_averaged"] = torch.tensor(1, dtype=torch.long)
    return upgraded


def resume_problem(checkpoint: dict, cfg) -> str | None:
    """Why an old checkpoint cannot resume training under today's code (None: it can, once upgraded).
    The linear warm-up schedule was one LambdaLR before format 3 and is torch's LinearLR + SequentialLR now:
    its saved position does not carry over."""
    schedulers = checkpoint.get("lr_schedulers") or []
    if cfg.optim.schedule == "linear" and any("_schedulers" not in s for s in schedulers):
        return ("written by an earlier lienzo with optim.schedule=linear, whose schedule state today's cannot take: "
                "evaluate, predict and sample use its best.ckpt as it is; to train on, start a fresh run")
    return None
