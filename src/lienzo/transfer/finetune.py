"""Fine-tuning: start from pretrained weights, then per-layer learning rates, frozen and re-initialised layers,
gradual unfreezing, and how far each layer moved.

    finetune:
      unfreeze_after: 2             # the new last layer alone for 2 epochs, then every group at its rate
      groups:
        - {pattern: "features.conv1_*", lr: 1.0e-2, reinit: true}   # the thesis (VGG): low layers relearnt ...
        - {pattern: "features.*", lr: 1.0e-4}                       # ... upper convolutions barely moved
        - {pattern: "fc8", lr: 1.0e-2, reinit: true}

A parameter belongs to the first group whose pattern matches its module or parameter name (fnmatch:
`layer4.*`, `fc`, `features.conv1_?`); the others train at `optim.lr`. `freeze: true` keeps a group's weights
as they are (and its batch-norm layers in eval mode, so their statistics stay too).
"""

from __future__ import annotations

import fnmatch
import logging

import torch
from torch import nn

from lienzo.config import FinetuneConfig, FinetuneGroup, parse_section
from lienzo.errors import ConfigError
from lienzo.models.pretrained import classifier_name

log = logging.getLogger("lienzo")


def matches(group: FinetuneGroup, name: str) -> bool:
    """Does the group's pattern match a module or parameter name?"""
    return fnmatch.fnmatchcase(name, group.pattern) or fnmatch.fnmatchcase(name, group.pattern + ".*")


def parse_groups(raw) -> list[FinetuneGroup]:
    """`finetune.groups` as FinetuneGroup objects: from the typed config, or from the plain dicts that
    checkpoints' hyper_parameters hold (checked like a config's, errors naming finetune.groups[i].key)."""
    if not raw:
        return []
    if all(isinstance(g, FinetuneGroup) for g in raw):
        return list(raw)
    return parse_section(FinetuneConfig, {"groups": list(raw)}, "finetune").groups


def assign(model: nn.Module, groups: list[FinetuneGroup]) -> dict[str, int | None]:
    """parameter name → index of its group (None: the default group)."""
    result = {}
    for name, _ in model.named_parameters():
        result[name] = next((i for i, g in enumerate(groups) if matches(g, name)), None)
    for i, group in enumerate(groups):
        if i not in result.values():
            raise ConfigError(f"finetune.groups[{i}].pattern '{group.pattern}' matches no parameter "
                              f"(names look like: {', '.join(list(result)[:6])} ...)")
    return result


def prepare(model: nn.Module, groups: list[FinetuneGroup], seed: int = 0) -> dict[str, int | None]:
    """Freeze and re-initialise as the groups say; returns the assignment of parameters to groups."""
    owner = assign(model, groups)
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed + 104729)
    for module_name, module in model.named_modules():
        params = [f"{module_name}.{n}" if module_name else n for n, _ in module.named_parameters(recurse=False)]
        if params and hasattr(module, "reset_parameters"):
            owners = {owner[p] for p in params}
            if len(owners) == 1 and (i := owners.pop()) is not None and groups[i].reinit:
                module.reset_parameters()
    torch.random.set_rng_state(generator_state)
    for name, param in model.named_parameters():
        i = owner[name]
        if i is not None and groups[i].freeze:
            param.requires_grad_(False)
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    log.info("fine-tuning: %d groups, %s of %s parameters frozen", len(groups), f"{frozen:,}",
             f"{sum(p.numel() for p in model.parameters()):,}")
    return owner


def param_groups(model: nn.Module, groups: list[FinetuneGroup], owner: dict, base_lr: float, weight_decay: float) -> list[dict]:
    """Optimizer groups: one per (fine-tuning group, decay or not); frozen parameters are left out."""
    buckets: dict[tuple, dict] = {}
    for name, param in model.named_parameters():
        i = owner[name]
        if i is not None and groups[i].freeze:
            continue
        lr = groups[i].lr if i is not None and groups[i].lr is not None else base_lr
        decay = weight_decay if param.ndim > 1 else 0.0
        key = (i, decay)
        bucket = buckets.setdefault(key, {"params": [], "lr": lr, "weight_decay": decay,
                                          "name": groups[i].pattern if i is not None else "default"})
        bucket["params"].append(param)
    return list(buckets.values())


def head_parameters(model: nn.Module) -> set[str]:
    """Names of the classifier's parameters (get_classifier(), or torchvision's fc/head/classifier[-1])."""
    head = classifier_name(model)
    return {f"{head}.{n}" for n, _ in model.get_submodule(head).named_parameters()}


def set_trainable(model: nn.Module, groups: list[FinetuneGroup], owner: dict, epoch: int, unfreeze_after: int) -> None:
    """Gradual unfreezing: before `unfreeze_after` epochs only the classifier learns."""
    head = head_parameters(model)
    for name, param in model.named_parameters():
        i = owner.get(name)
        frozen = i is not None and groups[i].freeze
        param.requires_grad_(not frozen and (epoch >= unfreeze_after or name in head))


def frozen_norms_to_eval(model: nn.Module) -> None:
    """Batch-norm layers whose parameters do not learn keep their running statistics too."""
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            params = list(module.parameters(recurse=False))
            if params and not any(p.requires_grad for p in params):
                module.eval()


@torch.no_grad()
def weight_movement(model: nn.Module, reference: dict[str, torch.Tensor]) -> dict[str, float]:
    """Per layer (module with weights), the sum of squared differences from the reference (pretrained)
    weights, the thesis's Figure D.5. Layers whose shape changed (a new head) are left out."""
    moved: dict[str, float] = {}
    for name, param in model.named_parameters():
        ref = reference.get(name)
        if ref is None or ref.shape != param.shape:
            continue
        layer = name.rsplit(".", 1)[0]
        moved[layer] = moved.get(layer, 0.0) + float(((param.detach().float().cpu() - ref.float()) ** 2).sum())
    return moved
