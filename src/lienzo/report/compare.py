"""Runs side by side on one static page: a table of what each is and reached, and curves of every
quantity they logged, one panel per quantity with a line per run.

    compare_runs(["runs/basenet", "runs/fashion_fast"], "compare.html")
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

from lienzo.errors import RunError
from lienzo.runs import HISTORY_FILE, describe_run, read_history
from lienzo.report.content import Image, Page, ReportSection, Table
from lienzo.report.pages import write_page
from lienzo.report.plots import curve_groups, finish_panel, logged_points, panel_grid, plt


def _png_data(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def compare_figure(histories: dict[str, list[dict]]) -> str | None:
    """One panel per logged quantity (validation where a run has it, else training), a line per run,
    as an inline PNG (the page stays one file)."""
    groups: dict[str, list[str]] = {}
    for history in histories.values():
        for base, columns in curve_groups(history).items():
            groups.setdefault(base, [])
            groups[base] += [c for c in columns if c not in groups[base]]
    if not groups:
        return None
    fig, axes = panel_grid(len(groups))
    for ax, (base, columns) in zip(axes, groups.items()):
        preferred = [c for c in columns if c.startswith("val_")] or columns
        for name, history in histories.items():
            # validation where this run has it, else what it logged (a run without a validation split keeps its line)
            column = next((c for c in [*preferred, *columns] if any(c in r for r in history)), None)
            if column is None:
                continue
            label = name if column in preferred or len(preferred) == len(columns) else f"{name} ({column})"
            ax.plot(*logged_points(history, column), "-o", ms=3, label=label)
        finish_panel(ax, preferred[0] if len(preferred) == 1 else base, base)
    return _png_data(fig)


def _value(value) -> str:
    if value is None:
        return "–"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def compare_runs(runs: list[str | Path], out: str | Path) -> Path:
    """Write one HTML page comparing the given run folders; returns its path."""
    if len(runs) < 2:
        raise RunError("compare needs at least two run folders")
    described, histories = [], {}
    for run in runs:
        run = Path(run)
        if not run.is_dir():
            raise RunError(f"{run}: run folder not found")
        info = describe_run(run)
        described.append(info)
        label = info["name"] if info["name"] not in histories else str(run)
        histories[label] = read_history(run / HISTORY_FILE) if (run / HISTORY_FILE).is_file() else []
    header = ["run", "task", "arch", "data", "epochs", "metric", "value", "minutes", "state"]
    rows = [[r["name"], _value(r["task"]), _value(r["arch"]), _value(r["data"]),
             f"{r['epochs']}/{r['max_epochs'] or '?'}", _value(r["metric"]), _value(r["main"]),
             f"{r['seconds'] / 60:.1f}", r["state"]] for r in described]
    sections = [ReportSection("", table=Table(header, rows))]
    figure = compare_figure(histories)
    if figure:
        sections.append(ReportSection("Curves", [Image(figure, "curves of the compared runs")]))
    return write_page(Path(out), Page("Runs compared", sections=sections))
