"""Typed run configuration: dataclasses with visible defaults, loaded from YAML, overridden by key=value.

    cfg = load_config("configs/fashion_basenet.yaml", ["optim.lr=0.05", "trainer.max_epochs=3"])

Unknown keys and values of the wrong type are errors that name the key.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lienzo.errors import ConfigError, did_you_mean


@dataclass
class DataConfig:
    name: str = "fashion_mnist"  # fashion_mnist, mnist, kmnist, idx, cifar10, cifar100, folder, hdf5, cub
    root: str | None = None  # folder or file of the data; None = the source's default location
    val_fraction: float = 0.1  # stratified, seeded hold-out from the training split (the practice's 10 %)
    batch_size: int = 32  # the practice's batch size
    augment: str = "none"  # none, basic, standard, strong
    random_erasing: float | None = None  # probability per image; None = the preset's (0.5 for strong, else 0)
    progressive_scale: float | None = None  # progressive resizing: the first epoch trains on images scaled by this
    # (e.g. 0.7: 28 → 20 px), growing linearly to full size over progressive_fraction of the epochs; None = off
    progressive_fraction: float = 0.5
    normalize: bool = True  # per-channel mean/std from the training split only
    classes: list[str] | None = None  # train on a subset of class names (the practice used 25 of 100)
    label_mode: str = "fine"  # CIFAR-100: fine or coarse labels
    image_size: list[int] | None = None  # [H, W] to resize folder/HDF5 images to; None = keep
    channels: int | None = None  # 1 or 3 to force grey (ITU-R 601 luma) or RGB for any source; None = from the data
    strict: bool = False  # folders: an unreadable image is an error instead of a skipped file
    num_workers: int = 0  # data is held in memory as uint8 tensors; workers rarely help


@dataclass
class ModelConfig:
    arch: str = "basenet"
    dropout: float | None = None  # None = the architecture's default
    variant: str = "auto"  # auto, small or imagenet: stem/layout; auto picks small for inputs under 64 px
    pretrained: str | None = None  # weights to start from: a .pth/.safetensors file, a torchvision weights
    # name found in $TORCH_HOME/hub/checkpoints (IMAGENET1K_V1), or a lienzo run folder


@dataclass
class FinetuneGroup:
    pattern: str = ""  # fnmatch pattern on module or parameter names: "layer4.*", "fc", "features.conv1_?"
    lr: float | None = None  # this group's learning rate; None = optim.lr
    freeze: bool = False  # keep the pretrained weights (and batch-norm statistics) as they are
    reinit: bool = False  # start these layers afresh


@dataclass
class FinetuneConfig:
    # Each group: {pattern: "layer4.*", lr: 1.0e-4, freeze: false, reinit: false}; a parameter belongs to the
    # first group whose pattern (fnmatch, on module or parameter names) matches it; the rest use optim.lr.
    groups: list[FinetuneGroup] | None = None
    unfreeze_after: int = 0  # gradual unfreezing: only the last layer trains for this many epochs


@dataclass
class OptimConfig:
    name: str = "sgd"  # sgd, adam, adamw
    lr: float = 0.01
    momentum: float = 0.0
    nesterov: bool = False
    betas: list[float] | None = None  # adam/adamw: (beta1, beta2); None = (0.9, 0.999). WGAN-GP uses [0.0, 0.9]
    weight_decay: float = 0.0
    label_smoothing: float = 0.0
    schedule: str = "none"  # none, step, cosine, onecycle, linear (warm-up then linear decay to 0), plateau
    step_size: int = 10  # step: epochs between decays
    gamma: float = 0.1  # step/plateau: decay factor
    warmup_fraction: float = 0.25  # onecycle, linear: fraction of steps spent warming up
    lookahead_steps: int = 0  # Lookahead: every k steps the slow weights move alpha of the way; 0 = off
    lookahead_alpha: float = 0.5


@dataclass
class TrainerConfig:
    max_epochs: int = 30
    precision: str = "auto"  # auto (bf16 where the hardware has it, else 32), 32, bf16, 16
    accelerator: str = "auto"  # auto, cpu, gpu
    devices: Any = "auto"  # number of devices or "auto"
    num_nodes: int = 1
    strategy: str = "auto"  # auto, ddp, ...
    channels_last: bool = True
    early_stopping_patience: int | None = None  # epochs without val improvement; None = off
    monitor: str = "val_loss"  # what best.ckpt and early stopping watch: a logged metric of the task
    # (classify: val_loss, val_top1, or train_loss when training on the whole split); its mode (min/max) is the task's
    max_steps: int | None = None  # stop after this many optimizer steps (GANs count generator steps), however
    # many epochs that takes (max_epochs is then no limit); None = max_epochs
    logger: str = "csv"  # csv (history.csv), tensorboard (<run>/tensorboard) or mlflow (<run.dir>/mlruns, no server)
    tta: bool = False  # evaluate with horizontal-flip test-time augmentation
    test_every_epoch: bool | int = False  # also score the test split after every epoch (true) or every N epochs
    # and the last (N): test_loss/test_top1 in history.csv for time-to-accuracy curves (never used to choose best.ckpt)
    tta_shift: int = 0  # also with the images moved by this many pixels in 4 directions (half weight); 0 = off
    ema_decay: float | None = None  # keep an exponential moving average of the weights (e.g. 0.999) and
    # validate, checkpoint and evaluate with it; None = off
    progress: bool = True
    threads: int | None = None  # CPU threads for torch; None = all cores


@dataclass
class RunConfig:
    dir: str = "runs"
    name: str | None = None  # None = <config file stem>
    seed: int = 0


@dataclass
class Config:
    task: str = "classify"  # classify, or any registered task (lienzo.tasks): what is trained and evaluated
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    run: RunConfig = field(default_factory=RunConfig)
    # A task adds its own sections (classify: `finetune`, a FinetuneConfig) through Task.config_sections.

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


CHOICES = {
    "data.augment": ("none", "basic", "standard", "strong"),
    "data.label_mode": ("fine", "coarse"),
    "model.variant": ("auto", "small", "imagenet"),
    "optim.name": ("sgd", "adam", "adamw"),
    "optim.schedule": ("none", "step", "cosine", "onecycle", "linear", "plateau"),
    "trainer.precision": ("auto", "32", "bf16", "16"),
    "trainer.logger": ("csv", "tensorboard", "mlflow"),
}


WANTED = {bool: "true or false", int: "an integer", float: "a number", str: "a string", list: "a list"}  # in errors


def _coerce(key: str, value: Any, annotation: Any) -> Any:
    """Check (and gently convert) a value against a field annotation; raise ConfigError naming the key."""
    if isinstance(annotation, str):
        annotation = eval(annotation, vars(typing) | globals() | {"list": list})  # from __future__ annotations
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


def _apply(section: Any, prefix: str, values: dict) -> None:
    if not isinstance(values, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: expected a mapping, got {values!r}")
    fields = {f.name: f for f in dataclasses.fields(section)}
    for name, value in values.items():
        key = f"{prefix}{name}"
        if name not in fields:
            known = [f"{prefix}{n}" for n in fields]
            raise ConfigError(f"unknown config key '{key}'{did_you_mean(key, known)}")
        current = getattr(section, name)
        if dataclasses.is_dataclass(current):
            _apply(current, f"{key}.", value)
        else:
            coerced = _coerce(key, value, fields[name].type)
            if key in CHOICES and coerced not in CHOICES[key]:
                raise ConfigError(f"{key}: {coerced!r} is not one of {', '.join(CHOICES[key])}")
            setattr(section, name, coerced)


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
    """Config, plus a task's own typed sections (`Task.config_sections`) as fields of a subclass."""
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


def config_from_dict(values: dict | None, overrides: list[str] = (), sections_for=None) -> Config:
    """Build a Config from nested dict values and key=value overrides, validating every key.

    `sections_for(task name)` gives the task's own config sections (lienzo.tasks.task_sections does:
    `lienzo.load_config` is this with the task registry plugged in); without it, only the shared ones."""
    values = values or {}
    name = task_name(values, overrides)
    cfg = config_class(name, sections_for(name) if sections_for else None)()
    _apply(cfg, "", values or {})
    for text in overrides:
        path, value = parse_override(text)
        nested: Any = value
        for part in reversed(path):
            nested = {part: nested}
        _apply(cfg, "", nested)
    _validate(cfg)
    return cfg


def _validate(cfg: Config) -> None:
    if not 0.0 <= cfg.data.val_fraction < 1.0:
        raise ConfigError(f"data.val_fraction: must be in [0, 1), got {cfg.data.val_fraction}")
    if cfg.data.batch_size < 1:
        raise ConfigError(f"data.batch_size: must be at least 1, got {cfg.data.batch_size}")
    if cfg.optim.lr <= 0:
        raise ConfigError(f"optim.lr: must be positive, got {cfg.optim.lr}")
    if cfg.trainer.max_epochs < 1:
        raise ConfigError(f"trainer.max_epochs: must be at least 1, got {cfg.trainer.max_epochs}")
    if cfg.data.image_size is not None and len(cfg.data.image_size) not in (1, 2):
        raise ConfigError(f"data.image_size: expected [H, W], got {cfg.data.image_size}")
    if cfg.data.progressive_scale is not None and not 0 < cfg.data.progressive_scale <= 1:
        raise ConfigError(f"data.progressive_scale: must be in (0, 1], got {cfg.data.progressive_scale}")
    if not 0 < cfg.data.progressive_fraction <= 1:
        raise ConfigError(f"data.progressive_fraction: must be in (0, 1], got {cfg.data.progressive_fraction}")
    if cfg.data.random_erasing is not None and not 0 <= cfg.data.random_erasing <= 1:
        raise ConfigError(f"data.random_erasing: must be a probability, got {cfg.data.random_erasing}")
    if cfg.trainer.ema_decay is not None and not 0.0 <= cfg.trainer.ema_decay < 1.0:
        raise ConfigError(f"trainer.ema_decay: must be in [0, 1), got {cfg.trainer.ema_decay}")
    if cfg.data.channels is not None and cfg.data.channels < 1:
        raise ConfigError(f"data.channels: must be at least 1, got {cfg.data.channels}")
    if cfg.optim.lookahead_steps < 0 or not 0.0 < cfg.optim.lookahead_alpha <= 1.0:
        raise ConfigError(f"optim.lookahead_steps must be >= 0 and optim.lookahead_alpha in (0, 1], got "
                          f"{cfg.optim.lookahead_steps} and {cfg.optim.lookahead_alpha}")
    if not isinstance(cfg.trainer.test_every_epoch, bool) and cfg.trainer.test_every_epoch < 0:
        raise ConfigError(f"trainer.test_every_epoch: true, false or a number of epochs >= 0, got "
                          f"{cfg.trainer.test_every_epoch}")
    if cfg.trainer.tta_shift < 0:
        raise ConfigError(f"trainer.tta_shift: must be >= 0, got {cfg.trainer.tta_shift}")
    if cfg.optim.betas is not None and (len(cfg.optim.betas) != 2 or not all(0 <= b < 1 for b in cfg.optim.betas)):
        raise ConfigError(f"optim.betas: expected two numbers in [0, 1), got {cfg.optim.betas}")
    if cfg.trainer.max_steps is not None and cfg.trainer.max_steps < 1:
        raise ConfigError(f"trainer.max_steps: must be at least 1, got {cfg.trainer.max_steps}")


def validate_finetune(finetune: FinetuneConfig) -> None:
    """The checks of a `finetune` section (for the tasks that have one)."""
    for i, group in enumerate(finetune.groups or []):
        if not group.pattern:
            raise ConfigError(f"finetune.groups[{i}].pattern: expected a pattern such as 'layer4.*'")
        if group.lr is not None and group.lr <= 0:
            raise ConfigError(f"finetune.groups[{i}].lr: expected a positive number, got {group.lr}")
    if finetune.unfreeze_after < 0:
        raise ConfigError(f"finetune.unfreeze_after: must be >= 0, got {finetune.unfreeze_after}")


def shared_config(values: dict) -> Config:
    """A saved config's shared sections only (data, model, optim, trainer, run): what a run of any task
    tells about its networks without its task's own sections."""
    shared = {f.name for f in dataclasses.fields(Config)}
    return config_from_dict({k: v for k, v in (values or {}).items() if k in shared})


def load_config(path: str | Path | None, overrides: list[str] = (), sections_for=None) -> Config:
    """Load a YAML config file (or only defaults when path is None) and apply key=value overrides."""
    values: dict = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        try:
            values = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f" line {mark.line + 1}" if mark else ""
            raise ConfigError(f"{path}{where}: not valid YAML") from err
    cfg = config_from_dict(values, overrides, sections_for)
    if cfg.run.name is None and path is not None:
        cfg.run.name = Path(path).stem
    return cfg


def dump_config(cfg: Config) -> str:
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)
