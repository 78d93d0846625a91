"""report.html for a run of any task: headline cards, the task's sections, curves of everything it
logged, the history table and the config, on one static page that needs no server or network.

The task's sections come from its caller (`Task.report`, asked by the spine): this page knows no task.

    write_report(run_dir, cfg, metrics, history, task.report(run_dir, cfg, metrics, history, data, extras))
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

from lienzo.config import dump_config
from lienzo.runs import atomic_write_text, history_columns
from lienzo.report import plots
from lienzo.report.content import Image, Report, ReportSection, Table
from lienzo.report.pages import render


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def write_report(run_dir: Path, cfg, metrics: dict, history: list[dict], report: Report) -> Path:
    """Draw the training curves into <run>/plots/ and write <run>/report.html around the task's `report`
    (its cards and sections); returns the page's path."""
    cards = [("task", metrics.get("task", cfg.task)), ("epochs", str(metrics.get("epochs", "–"))),
             ("train time", f"{metrics.get('train_seconds', 0) / 60:.1f} min"), *report.cards]
    sections = [report.headline] if report.headline is not None else []
    if history:
        curves = plots.plot_curves(history, run_dir / "plots" / "curves.png", report.curve_labels)
        sections.append(ReportSection("Training curves", [Image(f"plots/{curves.name}", "training curves")]))
    sections += report.sections
    if history:
        columns = history_columns(history)
        sections.append(ReportSection("History", table=Table(columns, [[_cell(r.get(c)) for c in columns]
                                                                          for r in history])))
    sections.append(ReportSection("Configuration", pre=dump_config(cfg)))
    path = run_dir / "report.html"
    atomic_write_text(path, render("run.html", title=run_dir.name, report=report, cards=cards,
                                   sections=[_figures_under_plots(s) for s in sections]))
    return path


def _figures_under_plots(section: ReportSection) -> ReportSection:
    """A section whose figures given by name (PNGs under plots/) are images, titled by the section."""
    figures = [Image(f"plots/{f}", section.title) if isinstance(f, str) else f for f in section.figures]
    return replace(section, figures=figures)
