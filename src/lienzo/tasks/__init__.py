"""Tasks by name, chosen by the config key `task`: one module per task, one registry.

    @register_task
    class Autoencode(Task):
        name = "autoencode"
        ...

    get_task("classify")        # the built-in tasks are imported the first time they are asked for
    list_tasks()                # ['classify', ...]

A task owns everything that differs between tasks (see `lienzo.tasks.base.Task`); the trainer,
the run folder and the report page only talk to this interface.
"""

from __future__ import annotations

import dataclasses
import importlib
from pathlib import Path

from lienzo import config as _config
from lienzo.errors import ConfigError, did_you_mean

# Built-in tasks ("module:class") are imported and registered on first use, so that parsing a config or
# `lienzo --help` stays light, and their modules need not import this registry (no import cycle).
_BUILTIN = {"classify": "lienzo.tasks.classify:Classify", "generate": "lienzo.tasks.generate:Generate",
            "caption": "lienzo.tasks.caption:Caption"}
_TASKS: dict[str, type] = {}


def register_task(task_cls: type) -> type:
    """Register a Task subclass under its `name`; a second, different class with that name is an error."""
    name = getattr(task_cls, "name", None)
    if not isinstance(name, str) or not name:
        raise ValueError(f"{task_cls.__name__}: a task needs a non-empty `name`")
    if name in _TASKS and _TASKS[name] is not task_cls:
        raise ValueError(f"task '{name}' is registered twice ({_TASKS[name].__qualname__}, {task_cls.__qualname__})")
    _TASKS[name] = task_cls
    return task_cls


def unregister_task(name: str) -> None:
    """Forget a registered task (tests register toy tasks and clean up after themselves)."""
    _TASKS.pop(name, None)


def list_tasks() -> list[str]:
    return sorted(set(_TASKS) | set(_BUILTIN))


def get_task(name: str):
    """An instance of the task registered as `name` (a built-in task is imported on first use)."""
    if name not in _TASKS and name in _BUILTIN:
        module, cls = _BUILTIN[name].split(":")
        register_task(getattr(importlib.import_module(module), cls))
    if name not in _TASKS:
        raise ConfigError(f"task: unknown task '{name}'{did_you_mean(name, list_tasks())}; "
                          f"known: {', '.join(list_tasks())}")
    return _TASKS[name]()


def task_sections(name: str) -> dict[str, type]:
    """The config sections of the task registered as `name`."""
    return dict(get_task(name).config_sections)


def config_from_dict(values: dict | None, overrides: list[str] = ()) -> "_config.Config":
    """The config of the task that `values` (or a `task=` override) names: nested values (a YAML file's
    mapping), then key=value overrides, every key checked (type, choices, range; a key of another task is an
    error that says what to use instead), then the task's own checks. `load_config` is this for a file.

        cfg = config_from_dict({"task": "generate", "gan": {"loss": "hinge"}}, ["trainer.max_steps=100"])
    """
    task = get_task(_config.task_name(values or {}, overrides))
    cfg = _config.parse_config(values, overrides, sections=task.config_sections,
                               foreign=lambda key, value: _other_tasks_key(task, key, value))
    task.validate(cfg)
    return cfg


def load_config(path: str | Path | None, overrides: list[str] = ()) -> "_config.Config":
    """A YAML config (or the defaults when path is None) with key=value overrides, for the task it names
    (`task:`, classify by default); `run.name` defaults to the file's stem.

        cfg = lienzo.load_config("configs/fashion_fast.yaml", ["trainer.max_epochs=3"])
    """
    values = _config.read_config_file(path) if path is not None else {}
    cfg = config_from_dict(values, overrides)
    if cfg.run.name is None and path is not None:
        cfg.run.name = Path(path).stem
    return cfg


def complete_config(cfg: "_config.Config") -> "_config.Config":
    """A config made by hand (`Config()`, the shared sections alone) as its task's config: its values
    parsed again with the task's sections and checks; a config of the task's own class is returned as it is."""
    task = get_task(cfg.task)
    if all(isinstance(getattr(cfg, name, None), cls) for name, cls in task.config_sections.items()):
        return cfg
    return config_from_dict(cfg.to_dict())


# -- keys of other tasks ------------------------------------------------------------------------------------

def _other_tasks_key(task, key: str, value) -> bool:
    """A key `task`'s config has no field for, set to `value`. In a section `task` has (data, trainer, ...),
    another task's key left at a value that does nothing (off, or that task's default for a key that is no
    on/off switch: what every saved run of another task holds from when these sections were shared) is
    dropped (True); any other value, or any key of a section `task` lacks (gan, caption, finetune), is one
    error naming the key and what to use instead; a key no task has is an unknown key (False)."""
    others = [name for name in [*_BUILTIN, *sorted(set(_TASKS) - set(_BUILTIN))] if name != task.name]
    defaults = {name: _config.config_class(name, task_sections(name))() for name in others}
    leaves = _set_leaves(key, value, defaults)
    if leaves is None:
        return False
    lenient = "." in key  # inside one of the task's own sections
    for leaf, leaf_value, owners in leaves:
        if not (lenient and _does_nothing(leaf_value, owners.values())):
            hints = task.config_hints
            hint = next((hints[k] for k in _key_and_parents(leaf) if k in hints), None)
            names = " and ".join(owners)
            raise ConfigError(f"{leaf} is {_a(names)} {names} setting; "
                              f"{hint or f'{_a(task.name)} {task.name} run does not use it'}")
    return True


def _set_leaves(key: str, value, configs: dict) -> list[tuple[str, object, dict]] | None:
    """(key, value, {task: its default}) of every single setting in `value` (a section's mapping is several);
    None when no other task has `key`."""
    owners = {name: _default_at(cfg, key) for name, cfg in configs.items()}
    owners = {name: default for name, default in owners.items() if default is not _MISSING}
    if not owners:
        return None
    if isinstance(value, dict) and all(dataclasses.is_dataclass(d) for d in owners.values()):
        leaves = []
        for name, item in value.items():
            found = _set_leaves(f"{key}.{name}", item, configs)
            if found is None:
                raise ConfigError(f"unknown config key '{key}.{name}'")
            leaves += found
        return leaves
    return [(key, value, owners)]


_MISSING = object()


def _default_at(cfg, key: str):
    for part in key.split("."):
        if not dataclasses.is_dataclass(cfg) or not hasattr(cfg, part):
            return _MISSING
        cfg = getattr(cfg, part)
    return cfg


def _does_nothing(value, defaults) -> bool:
    """Off (null, false, 0, none, []), or the default of a task that has the key unless that is an on switch
    (classify's data.normalize: true)."""
    off = value is None or value is False or value == "none" or value == [] or (
        type(value) in (int, float) and value == 0)
    return off or (value is not True and any(value == d for d in defaults if not dataclasses.is_dataclass(d)))


def _key_and_parents(key: str) -> list[str]:
    parts = key.split(".")
    return [".".join(parts[:i]) for i in range(len(parts), 0, -1)]


def _a(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"
