"""One registry of classifier builders: `@register_model`, `create_model(name, ...)`, `list_models(pattern)`.

    model = create_model("resnet18", num_classes=10, in_chans=1, input_size=(28, 28))
"""

from __future__ import annotations

import fnmatch
from typing import Callable

from torch import nn

from ..errors import ModelError, did_you_mean

_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Register a builder under its function name; a duplicate name is an error."""
    name = builder.__name__
    if name in _MODELS:
        raise ValueError(f"model '{name}' is registered twice")
    _MODELS[name] = builder
    return builder


def list_models(pattern: str = "*") -> list[str]:
    """Registered names matching a shell-style pattern, sorted (`list_models("res*")`)."""
    return sorted(n for n in _MODELS if fnmatch.fnmatch(n, pattern))


def get_builder(name: str) -> Callable[..., nn.Module]:
    """The registered builder function (its docstring describes the model)."""
    if name not in _MODELS:
        raise ModelError(f"unknown architecture '{name}'{did_you_mean(name, _MODELS)}; see `lienzo models`")
    return _MODELS[name]


def create_model(
    name: str, *, num_classes: int = 10, in_chans: int = 3, input_size: tuple[int, int] = (32, 32), **kwargs
) -> nn.Module:
    """Build a registered classifier. kwargs go to the builder (dropout, variant, ...); None means default."""
    builder = get_builder(name)
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    try:
        return builder(num_classes=num_classes, in_chans=in_chans, input_size=tuple(input_size), **kwargs)
    except (ValueError, TypeError) as err:
        raise ModelError(f"{name}: {err}") from None


def small_input(input_size: tuple[int, int], variant: str) -> bool:
    """The CIFAR-style layout for images under 64 px unless the variant says otherwise."""
    if variant not in ("auto", "small", "imagenet"):
        raise ValueError(f"variant must be auto, small or imagenet, got {variant!r}")
    return variant == "small" or (variant == "auto" and min(input_size) < 64)
