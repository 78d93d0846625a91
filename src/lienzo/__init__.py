"""lienzo: deep learning on images, from a laptop CPU to a GPU cluster.

The public names below load on first use (PEP 562), so `import lienzo` and `lienzo --help` do not
pay for torch and Lightning: `lienzo.train(...)` imports the trainer only when it is called for.
"""

from __future__ import annotations

import importlib
import sys
import types

__version__ = "0.1.0"

# public name -> module that defines it (the verbs `train`/`evaluate` shadow their modules on purpose)
_LAZY = {
    "Config": ".config",
    "load_config": ".tasks",
    "ConfigError": ".errors",
    "DataError": ".errors",
    "LienzoError": ".errors",
    "ModelError": ".errors",
    "RunError": ".errors",
    "create_model": ".models",
    "list_models": ".models",
    "train": ".train",
    "evaluate": ".evaluate",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    """Import the module that defines `name` on first access and cache the name in this package."""
    if name not in _LAZY:
        raise AttributeError(f"module 'lienzo' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


class _Package(types.ModuleType):
    """This package, with the verbs kept as functions when their submodules are imported."""

    def __setattr__(self, name: str, value) -> None:
        # Importing `lienzo.train` (e.g. `from lienzo.train import build_task`) makes the import system
        # set the submodule as this package's attribute `train`; keep the function there instead.
        if name in _LAZY and isinstance(value, types.ModuleType):
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
