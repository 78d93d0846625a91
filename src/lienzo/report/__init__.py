"""Plots and the static pages: a run's report.html (`lienzo.report.html`), runs compared
(`lienzo.report.compare`), every page rendered from the jinja2 templates in templates/ (`lienzo.report.pages`)
from data (`lienzo.report.content`). The report renders what a task hands it and imports no task; the
package itself imports nothing, so figures (`report.plots`) can be drawn by the tasks."""

import importlib

_LAZY = {"write_report": ".html", "compare_runs": ".compare"}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
