"""One registry per kind of model: `@register_model`, `create_model(name, ...)`, `list_models(pattern, kind)`.

    model = create_model("resnet18", num_classes=10, in_chans=1, input_size=(28, 28))
    list_models("res*")                        # every kind; list_models(kind="classifier") for one
    kinds()                                    # ["classifier", ...]: the kinds that have models

Every model of a kind has that kind's face (a classifier: `forward_features`, `forward_head`,
`get_classifier`, `reset_classifier`, `num_features`, `layer_groups`; a gan: `generator`, `critic`,
`z_dim`, `channels`, `image_size`, `maps`, `sample_noise`). Names are unique across kinds,
so a name alone says which builder it is.
"""

from __future__ import annotations

import fnmatch
import inspect
from typing import Callable

from torch import nn

from lienzo.errors import ModelError, did_you_mean

# kind → name → builder. Each kind's defaults for the arguments every builder of that kind takes.
_MODELS: dict[str, dict[str, Callable[..., nn.Module]]] = {}
KIND_DEFAULTS = {"classifier": {"num_classes": 10, "in_chans": 3, "input_size": (32, 32)},
                 "gan": {"channels": 3, "image_size": 32}, "caption": {"vocab_size": 2500}}


def register_model(builder: Callable[..., nn.Module] | None = None, *, kind: str = "classifier"):
    """Register a builder under its function name (`@register_model` or `@register_model(kind="generator")`);
    a name registered twice, in any kind, is an error."""

    def register(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        name = fn.__name__
        if any(name in models for models in _MODELS.values()):
            raise ValueError(f"model '{name}' is registered twice")
        _MODELS.setdefault(kind, {})[name] = fn
        return fn

    return register(builder) if builder is not None else register


def kinds() -> list[str]:
    """The kinds of model that have registered builders, sorted."""
    return sorted(kind for kind, models in _MODELS.items() if models)


def list_models(pattern: str = "*", kind: str | None = None) -> list[str]:
    """Registered names matching a shell-style pattern, sorted (`list_models("res*")`); `kind` keeps one kind."""
    if kind is not None and kind not in _MODELS:
        raise ModelError(f"unknown kind of model '{kind}'; known: {', '.join(kinds())}")
    pools = [_MODELS[kind]] if kind is not None else list(_MODELS.values())
    return sorted(n for models in pools for n in models if fnmatch.fnmatch(n, pattern))


def model_kind(name: str) -> str:
    """The kind a registered name belongs to."""
    for kind, models in _MODELS.items():
        if name in models:
            return kind
    known = [n for models in _MODELS.values() for n in models]
    raise ModelError(f"unknown architecture '{name}'{did_you_mean(name, known)}; see `lienzo models`")


def get_builder(name: str) -> Callable[..., nn.Module]:
    """The registered builder function (its docstring describes the model)."""
    return _MODELS[model_kind(name)][name]


def create_model(name: str, **kwargs) -> nn.Module:
    """Build a registered model. kwargs go to the builder (a classifier: num_classes, in_chans, input_size,
    dropout, variant, ...); None means the builder's default.

    An argument the builder does not take is a ModelError (a user mistake); an error raised inside the
    builder keeps its type and traceback, except the ModelErrors builders raise for values a user set."""
    kind = model_kind(name)
    builder = _MODELS[kind][name]
    kwargs = {**KIND_DEFAULTS.get(kind, {}), **{k: v for k, v in kwargs.items() if v is not None}}
    accepted = inspect.signature(builder).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in accepted.values()):
        unknown = sorted(set(kwargs) - set(accepted))
        if unknown:
            raise ModelError(f"{name} takes no {', '.join(unknown)} (it takes: {', '.join(accepted)})")
    if "input_size" in kwargs:
        kwargs["input_size"] = tuple(kwargs["input_size"])
    return builder(**kwargs)


def small_input(input_size: tuple[int, int], variant: str) -> bool:
    """The CIFAR-style layout for images under 64 px unless the variant says otherwise."""
    if variant not in ("auto", "small", "imagenet"):
        raise ModelError(f"model.variant must be auto, small or imagenet, got {variant!r}")
    return variant == "small" or (variant == "auto" and min(input_size) < 64)
