"""The config parser: types, YAML files and key=value overrides, field types resolved without eval, and
every preset loading. Which task owns which key, and every key's range: test_config_keys.py."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

import lienzo
from lienzo import config as config_module
from lienzo.config import Config, Range, parse_config
from lienzo.errors import ConfigError
from lienzo.tasks import (  # the loaders users get (lienzo.load_config)
    config_from_dict,
    load_config,
)


def test_defaults_are_the_practice_settings():
    cfg = Config()
    assert (cfg.data.batch_size, cfg.data.val_fraction, cfg.optim.name, cfg.optim.lr) == (32, 0.1, "sgd", 0.01)
    assert cfg.run.dir == "runs"


def test_overrides_are_parsed_as_yaml_and_typed():
    cfg = config_from_dict({}, ["optim.lr=0.5", "trainer.max_epochs=3", "data.classes=[a, b]", "data.strict=true",
                                "optim.weight_decay=1", "data.image_size=32,48"])
    assert cfg.optim.lr == 0.5 and isinstance(cfg.optim.weight_decay, float) and cfg.optim.weight_decay == 1.0
    assert cfg.trainer.max_epochs == 3 and cfg.data.classes == ["a", "b"] and cfg.data.strict is True
    assert cfg.data.image_size == [32, 48]


@pytest.mark.parametrize("override, message", [
    ("optim.lrr=1", "unknown config key 'optim.lrr' (did you mean optim.lr"),
    ("nope.x=1", "unknown config key 'nope'"),
    ("trainer.max_epochs=three", "trainer.max_epochs: expected an integer"),
    ("data.strict=maybe", "data.strict: expected true or false"),
    ("optim.schedule=exponential", "optim.schedule: 'exponential' is not one of"),
    ("data.augment=standrd", "data.augment: 'standrd' is not one of none, basic, standard, strong (did you mean standard"),
    ("data.val_fraction=1.5", "data.val_fraction: must be in [0, 1), got 1.5"),
    ("data.image_size=[1,2,3]", "data.image_size: expected [H, W], got [1, 2, 3]"),
    ("optim.betas=[0.9]", "optim.betas: expected two numbers [beta1, beta2], got [0.9]"),
    ("optim.betas=[0.9,1.5]", "optim.betas: every number must be in [0, 1) (or null), got [0.9, 1.5]"),
    ("trainer.ema_decay=1.0", "trainer.ema_decay: must be in [0, 1) (or null), got 1.0"),
    ("optim.lr=0", "optim.lr: must be positive, got 0.0"),
    ("data.batch_size=0", "data.batch_size: must be at least 1, got 0"),
    ('finetune.groups=[{pattern: "a", lr: -1}]', "finetune.groups[0].lr: must be positive (or null), got -1.0"),
    ("optim.lr", "is not key=value"),
])
def test_bad_keys_and_values_name_the_key(override, message):
    with pytest.raises(ConfigError) as err:
        config_from_dict({}, [override])
    assert message in str(err.value)


def test_yaml_file_and_run_name(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("data:\n  batch_size: 64\nmodel:\n  arch: lenet5\n")
    cfg = load_config(path, ["run.seed=3"])
    assert (cfg.data.batch_size, cfg.model.arch, cfg.run.seed, cfg.run.name) == (64, "lenet5", 3, "exp")
    path.write_text("data: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(path)
    path.write_text("- data\n")
    with pytest.raises(ConfigError, match="expected a mapping of sections"):
        load_config(path)
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "missing.yaml")


def test_one_public_loader():
    # lienzo.load_config is the task-aware loader; lienzo.config has only the parser under it, named so
    assert lienzo.load_config is load_config
    assert not hasattr(config_module, "load_config") and not hasattr(config_module, "config_from_dict")


def test_every_preset_loads():
    presets = sorted(Path("configs").glob("*.yaml"))
    assert {p.stem for p in presets} >= {"fashion_basenet", "fashion_basenet_plus", "fashion_fast", "fashion_best",
                                          "mnist_cnn", "cifar100_basenet", "gan_fashion", "flickr8k_vgg16_rank"}
    tasks = set()
    for path in presets:
        cfg = lienzo.load_config(path)
        assert cfg.run.name == path.stem
        tasks.add(cfg.task)
    assert tasks == {"classify", "generate", "caption"}


# -- field types without eval ---------------------------------------------------------------------------

Size = list[int]  # a name only this module knows: the annotation "Size | None" resolves here, not in lienzo.config


@dataclass
class Inner:
    weight: float = 1.0


@dataclass
class ToySection:
    size: Size | None = None
    items: list[Inner] = field(default_factory=list)
    ratio: float | int = 0.5


def test_string_annotations_resolve_in_their_own_module_without_eval():
    assert "eval(" not in Path(config_module.__file__).read_text()
    assert isinstance(ToySection.__dataclass_fields__["size"].type, str)  # `from __future__ import annotations`
    cfg = parse_config({"toy": {"size": [3, 4], "items": [{"weight": 2}]}}, ["toy.ratio=2"],
                       sections={"toy": ToySection})
    assert cfg.toy.size == [3, 4] and cfg.toy.items == [Inner(2.0)] and cfg.toy.ratio == 2.0
    with pytest.raises(ConfigError, match=r"toy.size\[1\]: expected an integer, got 'x'"):
        parse_config({"toy": {"size": [3, "x"]}}, sections={"toy": ToySection})
    with pytest.raises(ConfigError, match=r"unknown config key 'toy.items\[0\].wieght'"):
        parse_config({"toy": {"items": [{"wieght": 2}]}}, sections={"toy": ToySection})


def test_ranges_read_like_maths():
    assert [str(Range.parse(t)) for t in ("[1, inf)", "(0, inf)", "[0, inf)", "(2, inf)", "[0, 1)", "(0, 1]")] == [
        "at least 1", "positive", ">= 0", "> 2", "in [0, 1)", "in (0, 1]"]
    unit = Range.parse("[0, 1)")
    assert 0 in unit and 0.999 in unit and 1 not in unit and -0.001 not in unit
    with pytest.raises(ValueError):
        Range.parse("0..1")


def test_numbers_in_scientific_notation_are_numbers():
    """YAML 1.1 reads `1e-3` (no dot) as text; users type it for learning rates and weight decay."""
    from lienzo import load_config

    cfg = load_config("configs/fashion_basenet.yaml", ["optim.lr=1e-3", "optim.weight_decay=5E-4"])
    assert cfg.optim.lr == 0.001 and cfg.optim.weight_decay == 0.0005
    with pytest.raises(ConfigError, match="optim.lr: expected a number, got '1e-x'"):
        load_config(None, ["optim.lr=1e-x"])
