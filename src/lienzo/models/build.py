"""Build a network from a config or from a lienzo run folder: the one place that does, low in the tree
(it imports models, config and run-folder helpers only, never train, evaluate or transfer).

    model = build_model(cfg, num_classes=10, input_shape=(1, 28, 28))
    net = load_run_network("runs/fashion_fast")     # its model, config, class names, input shape, mean/std
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from lienzo.config import Config, shared_config
from lienzo.errors import ConfigError
from lienzo import legacy
from lienzo.runs import read_checkpoint
from lienzo.models.pretrained import (TIMM_PREFIX, TORCHVISION_ARCHS, adapt_head, adapt_input, is_weights_file,
                                      load_matching, load_pretrained, load_state, refuse_namesake)
from lienzo.models.registry import create_model

log = logging.getLogger("lienzo")


@dataclass
class RunNetwork:
    """A run's network rebuilt from its checkpoint, with what is needed to feed it."""

    model: nn.Module
    config: Config
    class_names: list[str]
    input_shape: tuple[int, int, int]
    mean: list[float]
    std: list[float]
    path: Path


def build_model(cfg: Config, num_classes: int, input_shape, load_weights: bool = True) -> nn.Module:
    """The network `model.*` describes; with `model.pretrained`, started from those weights (when
    load_weights), its last layer and first convolution adapted to the data's classes and channels.

    `model.pretrained` may be a weights file, a torchvision weights name (`alexnet_tv`, `vgg*`, `resnet*`
    then take the layout of torchvision's ImageNet weights) or a lienzo run folder (its architecture and
    weights, a new head). load_weights=False builds the same modules without reading any weights.
    torchvision's AlexNet weights for `alexnet` (the lecture's layout) are a ConfigError naming `alexnet_tv`."""
    channels, height, width = input_shape
    arch, pretrained = cfg.model.arch, cfg.model.pretrained
    if pretrained and Path(pretrained).is_dir():
        return _from_run(cfg, Path(pretrained), num_classes, channels, load_weights)
    if arch.startswith(TIMM_PREFIX) or (pretrained and arch in TORCHVISION_ARCHS):
        if pretrained and cfg.model.variant == "small":
            raise ConfigError(f"model.variant=small does not fit the ImageNet layout of {arch}'s pretrained "
                              "weights (leave it auto)")
        weights = pretrained if load_weights else None
        return load_pretrained(arch, weights, num_classes, channels, dropout=cfg.model.dropout).model
    if pretrained and not is_weights_file(pretrained):  # a torchvision weights name
        refuse_namesake(arch, f"model.pretrained={pretrained}")
    kwargs = {"variant": cfg.model.variant} if cfg.model.variant != "auto" else {}
    model = create_model(arch, num_classes=num_classes, in_chans=channels, input_size=(height, width),
                         dropout=cfg.model.dropout, **kwargs)
    if pretrained and load_weights:
        load_matching(model, pretrained, arch)
    return model


def _from_run(cfg: Config, run: Path, num_classes: int, channels: int, load_weights: bool) -> nn.Module:
    """A lienzo run's network (its architecture; its weights when load_weights), with a new head."""
    source = load_run_network(run, load_weights=load_weights)
    if source.config.model.arch != cfg.model.arch:
        raise ConfigError(f"model.pretrained: {run} is a {source.config.model.arch}, but model.arch is {cfg.model.arch}")
    model = source.model
    adapt_head(model, num_classes)
    adapt_input(model, channels)
    return model


def load_run_network(run: str | Path, which: str = "best", load_weights: bool = True) -> RunNetwork:
    """A run's classifier from its checkpoint: hyper_parameters' config and data facts, the state_dict's
    `model.*` tensors (torchvision's names in runs made before lienzo built these networks itself are
    renamed). load_weights=False: the same modules, randomly initialised."""
    checkpoint, path = read_checkpoint(run, which, weights=load_weights)
    current = legacy.is_current(checkpoint)
    if not current:
        checkpoint = legacy.upgrade_checkpoint(checkpoint)
    hp = checkpoint["hyper_parameters"]
    state = {k.removeprefix("model."): v for k, v in checkpoint["state_dict"].items() if k.startswith("model.")}
    cfg, facts = shared_config(hp["config"]), hp["info"]
    if not current:
        cfg = legacy.upgrade_classifier_config(cfg, state)
    input_shape = tuple(int(v) for v in facts["input_shape"])
    model = build_model(cfg, len(facts["class_names"]), input_shape, load_weights=False)
    if load_weights:
        if not current:
            state = legacy.upgrade_classifier_state(cfg.model.arch, model, state)
        load_state(model, state, f"{path} ({cfg.model.arch}, {len(facts['class_names'])} classes)", cfg.model.arch)
    return RunNetwork(model.eval(), cfg, list(facts["class_names"]), input_shape, list(facts["mean"]),
                      list(facts["std"]), path)
