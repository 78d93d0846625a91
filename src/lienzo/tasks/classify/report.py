"""What a classify run puts on its report page."""

from __future__ import annotations

from pathlib import Path

from lienzo.report.content import Report, ReportSection, Table
from lienzo.tasks.classify import plots


def report_sections(run_dir: Path, cfg, metrics: dict, data=None, extras: dict | None = None) -> Report:
    """A classify run's page: top-1/top-5 cards, the metrics table, confusion, per-class, predictions."""

    results = {s: metrics[s] for s in metrics.get("splits", ("val", "test")) if isinstance(metrics.get(s), dict)}
    plot_dir = run_dir / "plots"
    report = Report(subtitle=f"{metrics.get('arch', '')} · {metrics.get('parameters', 0):,} parameters · "
                             f"{cfg.data.name} · precision {metrics.get('precision', '')}")
    for split in ("val", "test"):
        if split in results:
            report.cards += [(f"{split} top-1", _pct(results[split]["top1"])),
                             (f"{split} top-5", _pct(results[split]["top5"]))]
    rows = [[s, _pct(results[s]["top1"]), _pct(results[s]["top5"]), _num(results[s]["cross_entropy"]),
             str(results[s]["count"])] for s in ("val", "test") if s in results]
    if rows:
        report.headline = ReportSection("Metrics", table=Table(
            ["split", "top-1", "top-5", "cross-entropy", "images"], rows))
    split = "test" if "test" in results else "val" if "val" in results else None
    if split:
        names = metrics["class_names"]
        r = results[split]
        report.sections.append(ReportSection(f"Confusion matrix ({split})", [plots.plot_confusion(
            r["confusion"], names, plot_dir / "confusion.png", f"{split}: rows are true classes").name]))
        report.sections.append(ReportSection(f"Per-class accuracy ({split})", [plots.plot_per_class(
            r["per_class"], plot_dir / "per_class.png", f"{split}: per-class top-1 and top-5").name]))
        arrays = getattr(data, f"{split}_arrays", None) if data is not None else None
        logits = (extras or {}).get(split, {}).get("_logits")
        title = f"Predictions ({split}): right, then wrong"
        if arrays is not None and logits is not None:
            report.sections.append(ReportSection(title, [plots.plot_predictions(
                arrays.images, arrays.labels, logits, names, plot_dir / "predictions.png").name]))
        elif (plot_dir / "predictions.png").is_file():  # a refreshed page keeps the grid drawn after training
            report.sections.append(ReportSection(title, ["predictions.png"]))
        per_class = [[n, _pct(v["top1"]), _pct(v["top5"]), _num(v["cross_entropy"]), str(v["count"])]
                     for n, v in r["per_class"].items()]
        report.sections.append(ReportSection(f"Per class ({split})", table=Table(
            ["class", "top-1", "top-5", "cross-entropy", "images"], per_class)))
    if metrics.get("weight_movement"):
        report.sections.append(ReportSection("How far each layer moved from the pretrained weights", [
            plots.plot_weight_movement(metrics["weight_movement"], plot_dir / "weight_movement.png").name]))
    for png in sorted(plot_dir.glob("tsne-*.png")):  # drawn by `lienzo tsne` on features of this run's network
        report.sections.append(ReportSection(
            f"t-SNE of this network's features: {png.stem.removeprefix('tsne-')}", [png.name]))
    return report


def _pct(value) -> str:
    return "–" if value is None or value != value else f"{100 * value:.2f} %"


def _num(value, digits=4) -> str:
    return "–" if value is None or value != value else f"{value:.{digits}f}"


