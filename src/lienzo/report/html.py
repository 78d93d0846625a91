"""report.html for a run of any task: headline cards, the task's sections, curves of everything it
logged, the history table and the config, on one static page that needs no server or network."""

from __future__ import annotations

import html
import math
from pathlib import Path

from lienzo.config import dump_config
from lienzo.runs import CONFIG_FILE, HISTORY_FILE, METRICS_FILE, atomic_write_text, history_columns, read_history, read_metrics
from lienzo.tasks import get_task
from lienzo.report import plots
from lienzo.report.layout import page, table

def _cell(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def write_report(run_dir: Path, cfg, metrics: dict, history: list[dict], data=None, extras: dict | None = None) -> Path:
    """Draw the plots into <run>/plots/ and write <run>/report.html; returns the page's path.

    The task (metrics["task"]) supplies the cards and sections; `extras` are its in-memory results
    (None when the page is re-drawn from the folder alone)."""
    task = get_task(metrics.get("task") or cfg.task)
    report = task.report(run_dir, cfg, metrics, history, data, extras)
    cards = [("task", metrics.get("task", cfg.task)), ("epochs", str(metrics.get("epochs", "–"))),
             ("train time", f"{metrics.get('train_seconds', 0) / 60:.1f} min"), *report.cards]
    parts = [
        f"<h1>{html.escape(run_dir.name)}</h1>",
        f"<p class='sub'>{html.escape(report.subtitle)}</p>" if report.subtitle else "",
        "<div class='cards'>" + "".join(f"<div class='card'>{html.escape(k)}<b>{html.escape(v)}</b></div>"
                                        for k, v in cards) + "</div>",
    ]
    if report.headline is not None:
        parts.append(_section(report.headline))
    if history:
        parts.append(_section_html("Training curves", f"<img src='plots/{plots.plot_curves(history, run_dir / 'plots' / 'curves.png', report.curve_labels).name}' alt='training curves'>"))
    for section in report.sections:
        parts.append(_section(section))
    if history:
        columns = history_columns(history)
        parts.append(_section_html("History", table(columns, [[_cell(r.get(c)) for c in columns] for r in history])))
    parts.append(_section_html("Configuration", f"<pre>{html.escape(dump_config(cfg))}</pre>"))
    path = run_dir / "report.html"
    atomic_write_text(path, page(run_dir.name, parts))
    return path


def _section(section) -> str:
    body = section.html + "".join(f"<img src='plots/{html.escape(name)}' alt='{html.escape(section.title)}'>"
                                  for name in section.figures)
    return _section_html(section.title, body)


def _section_html(title: str, body: str) -> str:
    return f"<h2>{html.escape(title)}</h2>{body}"


def refresh_report(run_dir: str | Path) -> Path:
    """Write a run's report.html again from what its folder holds (after plots were added to it)."""
    from lienzo.tasks import load_config

    run_dir = Path(run_dir)
    history = read_history(run_dir / HISTORY_FILE) if (run_dir / HISTORY_FILE).is_file() else []
    return write_report(run_dir, load_config(run_dir / CONFIG_FILE), read_metrics(run_dir / METRICS_FILE), history)
