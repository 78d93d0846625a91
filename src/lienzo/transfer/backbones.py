"""Backbones for transfer learning: a pretrained network by name, or a lienzo run's, with how to feed it.

    backbone = load_backbone("vgg19", weights="IMAGENET1K_V1")          # torch hub cache
    backbone = load_backbone("resnet50", weights="/models/r50.safetensors")
    backbone = load_backbone("runs/fashion_fast")                        # a model lienzo trained

Weights sources, in order: a lienzo run folder; a local `.pth`/`.pt`/`.safetensors` file; a torchvision
weights name (`IMAGENET1K_V1`, `DEFAULT`) in `$TORCH_HOME/hub/checkpoints/` (lienzo.models.pretrained
loads them; nothing is ever downloaded). Layers and feature extraction: lienzo.transfer.layers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from torch import nn

from lienzo.errors import ConfigError, did_you_mean
from lienzo.models.build import load_run_network
from lienzo.models.pretrained import (IMAGENET_MEAN, IMAGENET_STD, TIMM_PREFIX, TORCHVISION_ARCHS, Preprocess, Pretrained,
                                 adapt, is_weights_file, load_pretrained, refuse_namesake)

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "Backbone", "Preprocess", "load_backbone"]


@dataclass
class Backbone:
    """A network, where its weights came from, how to feed it, and its class names (if it has a head)."""

    name: str
    model: nn.Module
    weights: str
    preprocess: Preprocess
    class_names: list[str] | None = None
    family: str = ""
    notes: list[str] = field(default_factory=list)
    spec: dict = field(default_factory=dict)  # load_backbone's arguments: how to load this backbone again


def family(name: str) -> str:
    """alexnet, vgg, resnet or timm: which layer aliases apply."""
    if name.startswith(TIMM_PREFIX):
        return "timm"
    return next((f for f in ("alexnet", "vgg", "resnet") if name.startswith(f)), "")


def _looks_like_path(text: str) -> bool:
    return not text.startswith(TIMM_PREFIX) and ("/" in text or os.sep in text or text.startswith(("~", ".")))


def _run_folder(arch: str, weights: str | None) -> Path | None:
    """The lienzo run folder named as the backbone (or as its weights), or None; a path that does not exist
    is an error that says so (not an unknown backbone name)."""
    for given in (arch, weights):
        if given and Path(given).expanduser().is_dir():
            return Path(given).expanduser()
    if _looks_like_path(arch):
        path = Path(arch).expanduser()
        if path.exists():
            raise ConfigError(f"backbone {arch} is a file, not a run folder: give an architecture name and the "
                              "file as its weights (--weights)")
        raise ConfigError(f"backbone {arch}: the folder {path.resolve()} does not exist")
    return None


def load_backbone(arch: str, weights: str | None = None, num_classes: int | None = None,
                  in_chans: int | None = None) -> Backbone:
    """A backbone by name (`vgg19`, `resnet50`, `timm:<name>`) with weights from local files, or a lienzo run
    folder as `arch`; with a new head for `num_classes` and a first convolution for `in_chans` if given."""
    run = _run_folder(arch, weights)
    if run is not None:
        backbone = _from_run(run, num_classes)
        backbone.spec = {"backbone": str(run.resolve()), "weights": None, "num_classes": num_classes}
        return backbone
    if not arch.startswith(TIMM_PREFIX) and arch not in TORCHVISION_ARCHS:
        refuse_namesake(arch, f"backbone {arch}")
        raise ConfigError(f"backbone '{arch}' is not known{did_you_mean(arch, TORCHVISION_ARCHS)} (and there is no "
                          f"folder of that name); known: {', '.join(TORCHVISION_ARCHS)}, timm:<name> (with timm "
                          "installed), or a lienzo run folder")
    net = load_pretrained(arch, weights, num_classes, in_chans)
    backbone = _backbone(arch, net, family(arch))
    if weights and is_weights_file(weights):
        weights = str(Path(weights).expanduser().resolve())
    backbone.spec = {"backbone": arch, "weights": weights, "num_classes": num_classes, "in_chans": in_chans}
    return backbone


def _backbone(name: str, net: Pretrained, family_name: str) -> Backbone:
    return Backbone(name, net.model.eval(), net.source, net.preprocess, net.class_names, family_name, net.notes)


def _from_run(run: Path, num_classes: int | None) -> Backbone:
    loaded = load_run_network(run)
    channels, height, width = loaded.input_shape
    preprocess = Preprocess(list(loaded.mean), list(loaded.std), channels, None, None, (height, width))
    net = adapt(Pretrained(loaded.model, preprocess, f"lienzo run {run}", list(loaded.class_names)),
                num_classes, None, loaded.config.model.arch)
    return _backbone(loaded.config.model.arch, net, family(loaded.config.model.arch))
