"""Typed run configuration: the sections every task shares, with visible defaults; loaded from YAML and
overridden by key=value through `lienzo.load_config` (lienzo/tasks), which adds the task's own sections.

    cfg = lienzo.load_config("configs/fashion_basenet.yaml", ["optim.lr=0.05", "trainer.max_epochs=3"])

Task-neutral keys only: a task subclasses these sections for the keys it alone honours (classify's
`data.augment`, `trainer.tta`, ... in lienzo/tasks/classify/config.py) and adds sections of its own (`gan`,
`caption`), through `Task.config_sections`. Unknown keys, values of the wrong type, values outside a field's
range (`bounded`) or choices (`choice`) are errors that name the key; a key of another task is an error
that says what to use instead. `parse_config` below is the parser under `lienzo.load_config`: it knows no
task registry (its caller hands it the task's sections); use `lienzo.load_config`.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lienzo.errors import ConfigError, did_you_mean

# -- field helpers: ranges and choices, declared with the field, checked in one place --------------------

@dataclass(frozen=True)
class Range:
    """An interval of valid numbers, written as in maths: "[0, 1)", "(0, inf)", "[1, inf)"."""

    low: float
    high: float
    low_open: bool
    high_open: bool

    @classmethod
    def parse(cls, text: str) -> Range:
        match = re.fullmatch(r"\s*([\[(])\s*([^,]+?)\s*,\s*([^,]+?)\s*([\])])\s*", text)
        if match is None:
            raise ValueError(f"not an interval such as '[0, 1)': {text!r}")
        left, low, high, right = match.groups()
        return cls(float(low), float(high), left == "(", right == ")")

    def __contains__(self, value: float) -> bool:
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return above and below

    def __str__(self) -> str:
        """In words where they read better: "at least 1", "positive", ">= 0"; else the interval."""
        if math.isinf(self.high):
            if self.low == 0:
                return "positive" if self.low_open else ">= 0"
            return f"> {_num(self.low)}" if self.low_open else f"at least {_num(self.low)}"
        return (f"in {'(' if self.low_open else '['}{_num(self.low)}, {_num(self.high)}"
                f"{')' if self.high_open else ']'}")


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def bounded(default: Any, interval: str, *, lengths: tuple[int, ...] = (), form: str | None = None) -> Any:
    """A numeric field whose values must lie in `interval` (None passes where the type allows it); for a list
    field every item, and `lengths` the lengths it may have (`form` says the shape in errors: "[H, W]")."""
    metadata = {"range": Range.parse(interval), "lengths": lengths, "form": form}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def choice(default: str, options: tuple[str, ...]) -> Any:
    """A string field that takes one of `options`."""
    return field(default=default, metadata={"choices": tuple(options)})


@functools.cache
def field_rules(cls: type) -> dict[str, typing.Mapping]:
    """Field name → its metadata (range, choices), inherited: a subclass that only changes a field's default
    (`batch_size: int = 64`) keeps its base's range."""
    rules: dict[str, typing.Mapping] = {}
    for klass in reversed(cls.__mro__):
        for name, f in getattr(klass, "__dataclass_fields__", {}).items():
            if f.metadata:
                rules[name] = f.metadata
    return rules


@functools.cache
def field_types(cls: type) -> dict[str, Any]:
    """Field name → its type, resolved once per dataclass (string annotations included) in the module of the
    class that declared it."""
    return typing.get_type_hints(cls)


# -- the shared sections ---------------------------------------------------------------------------------

@dataclass
class DataConfig:
    name: str = "fashion_mnist"  # fashion_mnist, mnist, kmnist, idx, cifar10, cifar100, folder, hdf5, cub
    root: str | None = None  # folder or file of the data; None = the source's default location
    val_fraction: float = bounded(0.1, "[0, 1)")  # stratified, seeded hold-out from the training split (10 %)
    batch_size: int = bounded(32, "[1, inf)")  # the practice's batch size
    strict: bool = False  # folders: an unreadable image is an error instead of a skipped file
    num_workers: int = bounded(0, "[0, inf)")  # data is held in memory as uint8 tensors; workers rarely help


@dataclass
class ImageDataConfig(DataConfig):
    """The data of tasks that read images from the named sources of lienzo.data.sources (classify, generate)."""

    image_size: list[int] | None = bounded(None, "[1, inf)", lengths=(1, 2), form="[H, W]")  # to resize folder/HDF5
    # images to; None = keep
    channels: int | None = bounded(None, "[1, inf)")  # 1 or 3 to force grey (ITU-R 601 luma) or RGB for any
    # source; None = from the data
    classes: list[str] | None = None  # train on a subset of class names (the practice used 25 of 100)
    label_mode: str = choice("fine", ("fine", "coarse"))  # CIFAR-100: fine or coarse labels


@dataclass
class ModelConfig:
    arch: str = "basenet"
    dropout: float | None = bounded(None, "[0, 1)")  # None = the architecture's default
    variant: str = choice("auto", ("auto", "small", "imagenet"))  # stem/layout; auto: small under 64 px
    pretrained: str | None = None  # weights to start from: a .pth/.safetensors file, a torchvision weights
    # name found in $TORCH_HOME/hub/checkpoints (IMAGENET1K_V1), or a lienzo run folder


@dataclass
class FinetuneGroup:
    pattern: str = ""  # fnmatch pattern on module or parameter names: "layer4.*", "fc", "features.conv1_?"
    lr: float | None = bounded(None, "(0, inf)")  # this group's learning rate; None = optim.lr
    freeze: bool = False  # keep the pretrained weights (and batch-norm statistics) as they are
    reinit: bool = False  # start these layers afresh


@dataclass
class FinetuneConfig:
    """The `finetune` section of the tasks that fine-tune a pretrained network (classify, caption)."""

    # Each group: {pattern: "layer4.*", lr: 1.0e-4, freeze: false, reinit: false}; a parameter belongs to the
    # first group whose pattern (fnmatch, on module or parameter names) matches it; the rest use optim.lr.
    groups: list[FinetuneGroup] | None = None


@dataclass
class OptimConfig:
    name: str = choice("sgd", ("sgd", "adam", "adamw"))
    lr: float = bounded(0.01, "(0, inf)")
    momentum: float = bounded(0.0, "[0, 1)")
    nesterov: bool = False
    betas: list[float] | None = bounded(None, "[0, 1)", lengths=(2,), form="two numbers [beta1, beta2]")  # adam/
    # adamw; None = (0.9, 0.999). WGAN-GP uses [0.0, 0.9]
    weight_decay: float = bounded(0.0, "[0, inf)")
    schedule: str = choice("none", ("none", "step", "cosine", "onecycle", "linear", "plateau"))  # linear: warm-up
    # then linear decay to 0
    step_size: int = bounded(10, "[1, inf)")  # step: epochs between decays
    gamma: float = bounded(0.1, "(0, 1)")  # step/plateau: decay factor
    warmup_fraction: float = bounded(0.25, "[0, 1]")  # onecycle, linear: fraction of steps spent warming up


@dataclass
class TrainerConfig:
    max_epochs: int = bounded(30, "[1, inf)")
    precision: str = choice("auto", ("auto", "32", "bf16", "16"))  # auto: bf16 where the hardware has it, else 32
    accelerator: str = "auto"  # auto, cpu, gpu
    devices: Any = "auto"  # number of devices or "auto"
    num_nodes: int = bounded(1, "[1, inf)")
    strategy: str = "auto"  # auto, ddp, ...
    channels_last: bool = True
    early_stopping_patience: int | None = bounded(None, "[0, inf)")  # epochs without val improvement; None = off
    monitor: str = "val_loss"  # what best.ckpt and early stopping watch: a logged metric of the task
    # (classify: val_loss, val_top1, or train_loss when training on the whole split); its mode (min/max) is the task's
    max_steps: int | None = bounded(None, "[1, inf)")  # stop after this many optimizer steps (GANs count generator
    # steps), however many epochs that takes (max_epochs is then no limit); None = max_epochs
    logger: str = choice("csv", ("csv", "tensorboard", "mlflow"))  # csv (history.csv), tensorboard (<run>/tensorboard)
    # or mlflow (<run.dir>/mlruns, no server)
    progress: bool = True
    threads: int | None = bounded(None, "[1, inf)")  # CPU threads for torch; None = all cores


@dataclass
class RunConfig:
    dir: str = "runs"
    name: str | None = None  # None = <config file stem>
    seed: int = bounded(0, "[0, 4294967295]")  # numpy's and torch's seeds are 32-bit


@dataclass
class Config:
    task: str = "classify"  # classify, or any registered task (lienzo.tasks): what is trained and evaluated
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    run: RunConfig = field(default_factory=RunConfig)
    # A task replaces sections with its own subclasses and adds its own (Task.config_sections): classify's
    # data.augment, trainer.tta, ... and `finetune`; generate's `gan`; caption's `caption`.

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


_SCIENTIFIC = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")  # 1e-3, 5E4: numbers YAML 1.1 leaves as text
WANTED = {bool: "true or false", int: "an integer", float: "a number", str: "a string", list: "a list"}  # in errors


# -- the parser ------------------------------------------------------------------------------------------

def _coerce(key: str, value: Any, annotation: Any) -> Any:
    """Check (and gently convert) a value against a field's (resolved) type; raise ConfigError naming the key."""
    if annotation is Any:
        return value
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(annotation)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(key, value, option)
            except ConfigError as err:
                errors.append(err)
        wanted = [WANTED.get(typing.get_origin(option) or option) for option in options if option is not type(None)]
        if len(wanted) > 1 and all(wanted):  # say every type the key takes, not only the first one tried
            raise ConfigError(f"{key}: expected {' or '.join(wanted)}, got {value!r}")
        raise errors[0]
    if origin is list:
        (item_type,) = typing.get_args(annotation)
        if isinstance(value, str):  # key=a,b,c on the command line
            value = [yaml.safe_load(v) for v in value.split(",") if v]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected {WANTED[list]}, got {value!r}")
        return [_coerce(f"{key}[{i}]", v, item_type) for i, v in enumerate(value)]
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected {WANTED[bool]}, got {value!r}")
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected {WANTED[int]}, got {value!r}")
    if annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str) and _SCIENTIFIC.fullmatch(value.strip()):  # YAML 1.1 reads 1e-3 as text
            return float(value)
        raise ConfigError(f"{key}: expected {WANTED[float]}, got {value!r}")
    if annotation is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{key}: expected {WANTED[str]}, got {value!r}")
    if dataclasses.is_dataclass(annotation):  # a list item with its own keys (finetune.groups[0].lr)
        item = annotation()
        _apply(item, f"{key}.", dataclasses.asdict(value) if isinstance(value, annotation) else value)
        return item
    return value


# foreign(key, value): a key the config has no field for. True: drop it (a setting of another task left at
# a value that does nothing); False: an unknown key; or it raises the error that says what to use instead.
Foreign = Callable[[str, Any], bool]


def _apply(section: Any, prefix: str, values: dict, foreign: Foreign | None = None) -> None:
    if not isinstance(values, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: expected a mapping, got {values!r}")
    fields = {f.name: f for f in dataclasses.fields(section)}
    types_, rules = field_types(type(section)), field_rules(type(section))
    for name, value in values.items():
        key = f"{prefix}{name}"
        if name not in fields:
            if foreign is not None and foreign(key, value):
                continue
            known = [f"{prefix}{n}" for n in fields]
            raise ConfigError(f"unknown config key '{key}'{did_you_mean(key, known)}")
        current = getattr(section, name)
        if dataclasses.is_dataclass(current):
            _apply(current, f"{key}.", value, foreign)
            continue
        coerced = _coerce(key, value, types_[name])
        options = rules.get(name, {}).get("choices")
        if options and coerced not in options:
            raise ConfigError(f"{key}: {coerced!r} is not one of {', '.join(options)}{did_you_mean(str(coerced), options)}")
        setattr(section, name, coerced)


def check_ranges(section: Any, prefix: str = "") -> None:
    """Every numeric field of a config (or section) within its declared range: one ConfigError naming the
    key, the range and the value."""
    rules = field_rules(type(section))
    for f in dataclasses.fields(section):
        key, value = f"{prefix}{f.name}", getattr(section, f.name)
        if dataclasses.is_dataclass(value):
            check_ranges(value, f"{key}.")
            continue
        if isinstance(value, list) and value and all(dataclasses.is_dataclass(v) for v in value):
            for i, item in enumerate(value):
                check_ranges(item, f"{key}[{i}].")
            continue
        rule = rules.get(f.name, {})
        if "range" not in rule or value is None or isinstance(value, bool):
            continue
        others = typing.get_args(field_types(type(section))[f.name])  # what else the key takes: null, true/false
        or_null = "".join(f" (or {word})" for kind, word in ((type(None), "null"), (bool, "true or false")) if kind in others)
        if isinstance(value, list):
            if rule["lengths"] and len(value) not in rule["lengths"]:
                raise ConfigError(f"{key}: expected {rule['form'] or ' or '.join(map(str, rule['lengths'])) + ' numbers'}"
                                  f", got {value}")
            if not all(v in rule["range"] for v in value):
                raise ConfigError(f"{key}: every number must be {rule['range']}{or_null}, got {value}")
        elif value not in rule["range"]:
            raise ConfigError(f"{key}: must be {rule['range']}{or_null}, got {value}")


def parse_override(text: str) -> tuple[list[str], Any]:
    """'optim.lr=0.1' -> (['optim', 'lr'], 0.1); the value is parsed as YAML (so 3 is an int, true a bool)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} is not key=value")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw != "" else None
    except yaml.YAMLError:
        value = raw
    if isinstance(value, (dict,)):
        value = raw
    return key.strip().split("."), value


_CONFIG_CLASSES: dict[tuple, type] = {}


def config_class(task: str, sections: dict[str, type] | None = None) -> type[Config]:
    """Config, with a task's own typed sections (`Task.config_sections`) as fields of a subclass: a section
    named like a shared one (data, optim, ...) replaces it (a subclass of it), others are added."""
    sections = dict(sections or {})
    if not sections:
        return Config
    key = (task, tuple((name, cls) for name, cls in sections.items()))
    if key not in _CONFIG_CLASSES:
        fields = [(name, cls, field(default_factory=cls)) for name, cls in sections.items()]
        _CONFIG_CLASSES[key] = dataclasses.make_dataclass(f"{task.title().replace('_', '')}Config", fields,
                                                          bases=(Config,))
    return _CONFIG_CLASSES[key]


def task_name(values: dict, overrides=()) -> str:
    """The task a config is for: a `task=` override wins over the file's `task:`; classify by default."""
    name = values.get("task", "classify") if isinstance(values, dict) else "classify"
    for text in overrides:
        path, value = parse_override(text)
        if path == ["task"]:
            name = value
    if not isinstance(name, str):
        raise ConfigError(f"task: expected a task name, got {name!r}")
    return name


def parse_config(values: dict | None, overrides=(), *, sections: dict[str, type],
                 foreign: Foreign | None = None) -> Config:
    """The parser under `lienzo.load_config` (use that one: it knows the tasks): nested `values` (a YAML
    file's mapping), then key=value `overrides`, onto `config_class(task, sections)`, every key, type, choice
    and range checked. `foreign` is asked about keys the config has no field for (see `Foreign`)."""
    values = values or {}
    cfg = config_class(task_name(values, overrides), sections)()
    _apply(cfg, "", values, foreign)
    for text in overrides:
        path, value = parse_override(text)
        nested: Any = value
        for part in reversed(path):
            nested = {part: nested}
        _apply(cfg, "", nested, foreign)
    check_ranges(cfg)
    return cfg


def parse_section(cls: type, values: dict, prefix: str):
    """One section from plain values (a checkpoint's hyper_parameters), checked as in a config; errors name
    `prefix.key`."""
    section = cls()
    _apply(section, f"{prefix}.", values)
    check_ranges(section, f"{prefix}.")
    return section


def shared_config(values: dict) -> Config:
    """A saved config's shared sections only (data, model, optim, trainer, run), without what its task added
    (a run of any task tells this much about its networks)."""
    shared = {f.name for f in dataclasses.fields(Config)}
    return parse_config({k: v for k, v in (values or {}).items() if k in shared}, sections={},
                        foreign=lambda key, value: True)


def validate_finetune(finetune: FinetuneConfig) -> None:
    """The checks of a `finetune` section beyond types and ranges (for the tasks that have one)."""
    for i, group in enumerate(finetune.groups or []):
        if not group.pattern:
            raise ConfigError(f"finetune.groups[{i}].pattern: expected a pattern such as 'layer4.*'")


def read_config_file(path: str | Path) -> dict:
    """A YAML config file's mapping (lienzo.load_config parses it)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}{where}: not valid YAML") from err
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: expected a mapping of sections (data:, model:, ...), got {type(values).__name__}")
    return values


def dump_config(cfg: Config) -> str:
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)
