"""Plots and the one static report page of a run (`lienzo.report.html`), and run comparison
(`lienzo.report.compare`). The package itself imports nothing, so figures (`report.plots`) can be drawn
by the tasks that the page asks for its sections."""

import importlib

_LAZY = {"write_report": ".html", "refresh_report": ".html", "compare_runs": ".compare"}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
