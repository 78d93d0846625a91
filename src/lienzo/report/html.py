"""report.html: config, metrics tables and plots on one static page that needs no server or network."""

from __future__ import annotations

import html
import math
from pathlib import Path

from ..config import dump_config
from ..runs import atomic_write_text
from . import plots

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;color:#222;padding:0 1rem}
h1{margin-bottom:.2rem} .sub{color:#666;margin-top:0}
table{border-collapse:collapse;margin:.5rem 0 1.5rem} th,td{border:1px solid #ddd;padding:.25rem .6rem;text-align:right}
th{background:#f4f4f4} td:first-child,th:first-child{text-align:left}
img{max-width:100%;border:1px solid #eee;margin:.3rem 0} pre{background:#f7f7f7;padding:.8rem;overflow:auto;font-size:.85rem}
.cards{display:flex;gap:1rem;flex-wrap:wrap} .card{border:1px solid #ddd;border-radius:6px;padding:.6rem 1rem;min-width:9rem}
.card b{font-size:1.5rem;display:block}
"""


def _pct(value) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.2f} %"


def _num(value, digits=4) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def write_report(run_dir: Path, cfg, metrics: dict, history: list[dict], data=None, logits: dict | None = None) -> Path:
    """Draw the plots into <run>/plots/ and write <run>/report.html; returns the page's path."""
    plot_dir = run_dir / "plots"
    figures: list[tuple[str, str]] = []
    if history:
        figures.append(("Training curves", plots.plot_curves(history, plot_dir / "curves.png").name))
    split = "test" if "test" in metrics else "val" if "val" in metrics else None
    if split:
        names = metrics["class_names"]
        figures.append((f"Confusion matrix ({split})",
                        plots.plot_confusion(metrics[split]["confusion"], names, plot_dir / "confusion.png",
                                             f"{split}: rows are true classes").name))
        figures.append((f"Per-class accuracy ({split})",
                        plots.plot_per_class(metrics[split]["per_class"], plot_dir / "per_class.png",
                                             f"{split}: per-class top-1 and top-5").name))
        arrays = getattr(data, f"{split}_arrays", None) if data is not None else None
        if arrays is not None and logits and split in logits:
            figures.append((f"Predictions ({split}): right, then wrong",
                            plots.plot_predictions(arrays.images, arrays.labels, logits[split], names,
                                                   plot_dir / "predictions.png").name))
        elif (plot_dir / "predictions.png").is_file():  # a refreshed report keeps the grid drawn at the end of training
            figures.append((f"Predictions ({split}): right, then wrong", "predictions.png"))
    if metrics.get("weight_movement"):
        figures.append(("How far each layer moved from the pretrained weights",
                        plots.plot_weight_movement(metrics["weight_movement"], plot_dir / "weight_movement.png").name))
    for png in sorted(plot_dir.glob("tsne-*.png")):  # drawn by `lienzo tsne` on features of this run's network
        figures.append((f"t-SNE of this network's features: {png.stem.removeprefix('tsne-')}", png.name))
    cards = [("epochs", str(metrics.get("epochs", "–"))),
             ("train time", f"{metrics.get('train_seconds', 0) / 60:.1f} min")]
    for s in ("val", "test"):
        if s in metrics:
            cards.append((f"{s} top-1", _pct(metrics[s]["top1"])))
            cards.append((f"{s} top-5", _pct(metrics[s]["top5"])))
    summary_rows = [[s, _pct(metrics[s]["top1"]), _pct(metrics[s]["top5"]), _num(metrics[s]["cross_entropy"]),
                     str(metrics[s]["count"])] for s in ("val", "test") if s in metrics]
    per_class_rows = []
    if split:
        for name, values in metrics[split]["per_class"].items():
            per_class_rows.append([html.escape(name), _pct(values["top1"]), _pct(values["top5"]),
                                   _num(values["cross_entropy"]), str(values["count"])])
    history_rows = [[str(int(r["epoch"])), _num(r.get("train_loss")), _pct(r.get("train_top1")),
                     _num(r.get("val_loss")), _pct(r.get("val_top1")), f"{r.get('lr', math.nan):.3g}",
                     f"{r.get('seconds', math.nan):.1f}"] for r in history]
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>lienzo · {html.escape(run_dir.name)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{html.escape(run_dir.name)}</h1>",
        f"<p class='sub'>{html.escape(metrics.get('arch', ''))} · {metrics.get('parameters', 0):,} parameters · "
        f"{html.escape(cfg.data.name)} · precision {html.escape(str(metrics.get('precision', '')))}</p>",
        "<div class='cards'>" + "".join(f"<div class='card'>{html.escape(k)}<b>{v}</b></div>" for k, v in cards) + "</div>",
        "<h2>Metrics</h2>", _table(["split", "top-1", "top-5", "cross-entropy", "images"], summary_rows),
    ]
    for title, name in figures:
        parts.append(f"<h2>{html.escape(title)}</h2><img src='plots/{name}' alt='{html.escape(title)}'>")
    if per_class_rows:
        parts += [f"<h2>Per class ({split})</h2>", _table(["class", "top-1", "top-5", "cross-entropy", "images"], per_class_rows)]
    if history_rows:
        parts += ["<h2>History</h2>", _table(["epoch", "train loss", "train top-1", "val loss", "val top-1", "lr", "seconds"], history_rows)]
    parts += ["<h2>Configuration</h2>", f"<pre>{html.escape(dump_config(cfg))}</pre>", "</body></html>"]
    path = run_dir / "report.html"
    atomic_write_text(path, "\n".join(parts))
    return path


def refresh_report(run_dir: str | Path) -> Path:
    """Write a run's report.html again from what its folder holds (after plots were added to it)."""
    from ..config import load_config
    from ..runs import read_history, read_json

    run_dir = Path(run_dir)
    history = read_history(run_dir / "history.csv") if (run_dir / "history.csv").is_file() else []
    return write_report(run_dir, load_config(run_dir / "config.yaml"), read_json(run_dir / "metrics.json"), history)
