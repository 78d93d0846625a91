"""A model's builder settings from `model.*` key=value overrides, typed and checked by the config section of
the task that trains its kind of model (`lienzo summary wgan_resnet model.maps=32`).

    model_settings("wgan_resnet", ["model.maps=32"])   # {"maps": 32}, checked as `lienzo train` checks it
"""

from __future__ import annotations

from lienzo.config import parse_override
from lienzo.errors import ConfigError
from lienzo.models.registry import model_kind
from lienzo.tasks import config_from_dict

# The task whose config section `model` sets a kind of model in a training config.
TASK_OF_KIND = {"classifier": "classify", "gan": "generate", "caption": "caption"}
NOT_SETTINGS = ("arch", "pretrained")  # the architecture is named apart; weights do not change the layers


def model_settings(arch: str, overrides: list[str] = ()) -> dict:
    """Builder arguments from `model.*` key=value overrides, typed and checked as `lienzo train` does (an
    unknown key or a wrong type names the key); only the keys given, so the rest stay the builder's defaults."""
    keys = []
    for text in overrides:
        path, _ = parse_override(text)
        if len(path) != 2 or path[0] != "model" or path[1] in NOT_SETTINGS:
            raise ConfigError(f"lienzo summary {arch}: {text.strip()}: only model.* settings other than "
                              f"{', '.join('model.' + k for k in NOT_SETTINGS)} (e.g. model.maps=32)")
        keys.append(path[1])
    if not keys:
        return {}
    cfg = config_from_dict({"task": TASK_OF_KIND[model_kind(arch)], "model": {"arch": arch}}, list(overrides))
    return {key: getattr(cfg.model, key) for key in dict.fromkeys(keys)}
