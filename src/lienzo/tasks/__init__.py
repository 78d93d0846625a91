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
    """The config sections of the task registered as `name` (the config parser's `sections_for`)."""
    return dict(get_task(name).config_sections)


def config_from_dict(values: dict | None, overrides: list[str] = ()) -> "_config.Config":
    """`lienzo.config.config_from_dict` for any registered task: its sections parsed, its checks run."""
    cfg = _config.config_from_dict(values, overrides, task_sections)
    get_task(cfg.task).validate(cfg)
    return cfg


def load_config(path: str | Path | None, overrides: list[str] = ()) -> "_config.Config":
    """A YAML config (or the defaults) with key=value overrides, for the task it names (`task:`)."""
    cfg = _config.load_config(path, overrides, task_sections)
    get_task(cfg.task).validate(cfg)
    return cfg


def complete_config(cfg: "_config.Config") -> "_config.Config":
    """A config built without the task registry (lienzo.config alone) with its task's sections added at
    their defaults and its task's checks run; a complete one is returned as it is."""
    task = get_task(cfg.task)
    if all(hasattr(cfg, name) for name in task.config_sections):
        return cfg
    return config_from_dict(cfg.to_dict())
