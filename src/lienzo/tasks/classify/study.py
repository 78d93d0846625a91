"""The thesis's three steps, offline: photos → illustrations on a target domain everybody has.

The thesis took an ImageNet network to clip-art: its softmax failed on the new domain, an SVM on its
fc7 activations trained on a few labelled clip-art images did much better, and re-training the low
layers first (selective learning rates) then the SVM did better still. Here the source domain is
Fashion-MNIST (a network lienzo trains, or any lienzo run given), and the target domain is an
*illustrated* Fashion-MNIST made deterministically from its test images by `illustrate`:

1. tone: each image is smoothed (3×3 box) and its garment pixels (> 16/255) split into three flat
   tones at the image's own tertiles — the shading of a photo becomes the flat fills of a drawing;
2. palette: each image gets one of eight clip-art palettes (paper, ink, three fills), chosen by a
   generator seeded with `seed`, and its tones are painted with the fills in a per-image random
   order, so brightness no longer says which part of the garment a pixel belongs to;
3. outline: the garment's boundary (mask minus its 4-neighbour erosion) is drawn in the ink colour,
   and everything outside the garment is paper, light where the photos were black.

The first `labelled_per_class` target images of each class (seeded, stratified) are the small labelled
part the SVM and fine-tuning may use; every other target image is the test set of every row.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from lienzo.tasks import config_from_dict
from lienzo.data.arrays import ImageArrays
from lienzo.data.hdf5 import write_hdf5
from lienzo.errors import RunError
from lienzo.models.build import load_run_network
from lienzo.models.pretrained import classifier_name
from lienzo.runs import atomic_write_text, new_run_dir, read_json, write_json

log = logging.getLogger("lienzo")

# paper, ink, fill 1, fill 2, fill 3 (clip-art palettes)
PALETTES = np.array([
    ["#fdf6e3", "#1b1b1b", "#d62828", "#f77f00", "#fcbf49"],
    ["#ffffff", "#222222", "#1d3557", "#457b9d", "#a8dadc"],
    ["#f1faee", "#111111", "#2a9d8f", "#e9c46a", "#e76f51"],
    ["#fff1e6", "#3d2c2e", "#6d597a", "#b56576", "#eaac8b"],
    ["#f8f9fa", "#000000", "#06d6a0", "#118ab2", "#ef476f"],
    ["#fefae0", "#283618", "#606c38", "#dda15e", "#bc6c25"],
    ["#edf6f9", "#1d1d1d", "#006d77", "#83c5be", "#ffddd2"],
    ["#ffffff", "#14213d", "#fca311", "#8d99ae", "#9b2226"],
])
FOREGROUND = 16 / 255


def _rgb(palettes: np.ndarray) -> torch.Tensor:
    flat = [[int(c[i : i + 2], 16) for i in (1, 3, 5)] for c in palettes.ravel()]
    return torch.tensor(flat, dtype=torch.uint8).view(*palettes.shape, 3)


def illustrate(images: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """Grey photos (uint8 N×1×H×W) → flat-colour, outlined, palette-painted RGB drawings (uint8 N×3×H×W).

    Deterministic: the same images and seed give the same drawings (see the module's docstring)."""
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 1:
        raise ValueError(f"illustrate takes grey uint8 N×1×H×W images, got {images.dtype} {tuple(images.shape)}")
    n = len(images)
    x = images.float() / 255.0
    fg = x > FOREGROUND
    smooth = F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)
    masked = torch.where(fg, smooth, torch.nan).view(n, -1)
    has_fg = fg.view(n, -1).any(1)
    masked[~has_fg] = 0.0  # blank images: no tones to split
    cuts = torch.nanquantile(masked, torch.tensor([1 / 3, 2 / 3]), dim=1).T.view(n, 2, 1, 1)
    tone = (smooth > cuts[:, :1]).long() + (smooth > cuts[:, 1:]).long()  # 0, 1, 2
    padded = F.pad(fg.float(), (1, 1, 1, 1))
    eroded = fg & (padded[..., :-2, 1:-1] > 0) & (padded[..., 2:, 1:-1] > 0) \
        & (padded[..., 1:-1, :-2] > 0) & (padded[..., 1:-1, 2:] > 0)
    edge = fg & ~eroded

    draws = np.random.default_rng(seed).random((n, 4))  # row i depends only on i and seed
    palette = torch.from_numpy((draws[:, 0] * len(PALETTES)).astype(np.int64))
    order = torch.from_numpy(np.argsort(draws[:, 1:], axis=1))  # per-image order of the three fills
    fill = 2 + torch.gather(order, 1, tone.view(n, -1)).view_as(tone)
    slot = torch.where(fg, fill, torch.zeros_like(fill))
    slot = torch.where(edge, torch.ones_like(slot), slot)  # 0 paper, 1 ink, 2-4 fills
    colours = _rgb(PALETTES)[palette]  # N×5×3
    rgb = torch.gather(colours, 1, slot.view(n, -1, 1).expand(-1, -1, 3))  # N×HW×3
    return rgb.view(n, *images.shape[2:], 3).permute(0, 3, 1, 2).contiguous()


def labelled_split(labels: torch.Tensor, per_class: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices of `per_class` images of each class (seeded) and of all the others, both sorted."""
    g = torch.Generator().manual_seed(seed)
    chosen = []
    for c in labels.unique().tolist():
        index = (labels == c).nonzero().flatten()
        if len(index) <= per_class:
            raise RunError(f"class {c} has {len(index)} target images; --labelled-per-class {per_class} leaves none to test on")
        chosen.append(index[torch.randperm(len(index), generator=g)[:per_class]])
    chosen = torch.cat(chosen).sort().values
    rest = torch.ones(len(labels), dtype=torch.bool)
    rest[chosen] = False
    return chosen, rest.nonzero().flatten()


def write_target(photos: ImageArrays, path: Path, per_class: int, seed: int, max_test: int | None = None) -> dict:
    """The illustrated target domain as one HDF5 file: /train (the labelled part) and /test (the rest, or
    a stratified sample of `max_test` of it for quick runs)."""
    from lienzo.data.splits import stratified_split

    drawings = illustrate(photos.images, seed)
    labelled, rest = labelled_split(photos.labels, per_class, seed)
    if max_test and len(rest) > max_test:
        keep, _ = stratified_split(photos.labels[rest], 1 - max_test / len(rest), seed)
        rest = rest[keep]
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)
    for group, index in (("train", labelled), ("test", rest)):
        write_hdf5(partial, drawings[index].permute(0, 2, 3, 1).numpy(), photos.labels[index].numpy(),
                   photos.class_names, group)
    partial.replace(path)
    return {"drawings": drawings, "labelled": labelled, "rest": rest}


@dataclass
class StudySettings:
    labelled_per_class: int = 100
    source_epochs: int = 10
    finetune_epochs: int = 30
    reinit: tuple[str, ...] | None = None  # the low layers relearnt on the target; None: the first convolution
    # and its normalisation (what the variants in benchmarks/RESULTS.md found best for these drawings)
    low_lr: float = 1e-2  # re-initialised low layers and the new classifier (the thesis: 1e-2)
    high_lr: float = 3e-3  # the upper layers kept from the source (the thesis: 1e-4 for VGG-19's)
    batch_size: int = 64
    seed: int = 0
    max_test: int | None = None  # evaluate on at most this many target test images (quick runs)


SOURCE_PRESET = {  # the FastNet-S recipe fashion_fast used before AirNet, at fewer epochs: the default source
    "data": {"name": "fashion_mnist", "batch_size": 256, "augment": "basic"},
    "model": {"arch": "fastnet_s"},
    "optim": {"name": "sgd", "lr": 0.2, "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4,
              "label_smoothing": 0.1, "schedule": "onecycle", "warmup_fraction": 0.25},
    "trainer": {"tta": True},
}


def first_layers(model: torch.nn.Module, convs: int = 1) -> list[str]:
    """Names of the first `convs` convolutions and the normalisation layers before the next one."""
    names, seen = [], 0
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Conv2d):
            if seen == convs:
                break
            seen += 1
            names.append(name)
        elif seen and isinstance(module, (torch.nn.BatchNorm2d, torch.nn.GroupNorm, torch.nn.LayerNorm)):
            names.append(name)
    return names


def finetune_groups(model: torch.nn.Module, reinit: list[str], lr: float) -> list[dict]:
    """The study's fine-tuning groups: the low layers `reinit` and the model's classifier (whatever its
    name: `head`, `fc`, `fc8`, ...) re-initialised and trained at `lr`."""
    head = classifier_name(model)
    return [{"pattern": p, "lr": lr, "reinit": True} for p in [*reinit, head]]


def _target_training(settings: StudySettings, target: Path, channels: int, arch: str, run_dir: Path, name: str,
                     pretrained: str | None, groups: list[dict] | None, lr: float, progress: bool):
    from lienzo.train import train  # the study is a workflow above training: the one transfer module that trains

    values = {
        "data": {"name": "hdf5", "root": str(target), "channels": channels, "batch_size": settings.batch_size,
                 "augment": "basic", "val_fraction": 0.1},
        "model": {"arch": arch, "pretrained": pretrained},
        "optim": {"name": "sgd", "lr": lr, "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4,
                  "schedule": "cosine"},
        "trainer": {"max_epochs": settings.finetune_epochs, "monitor": "val_top1", "progress": progress},
        "finetune": {"groups": groups},
        "run": {"dir": str(run_dir), "name": name, "seed": settings.seed},
    }
    return train(config_from_dict(values))


def _svm_row(backbone: Path, target_cfg, work: Path, name: str, settings: StudySettings, progress: bool) -> dict:
    from lienzo.transfer.features import extract_features
    from lienzo.transfer.svm import evaluate_svm, fit_svm

    features = extract_features(str(backbone), "penultimate", target_cfg, work / f"features_{name}.h5", progress=progress)
    model = fit_svm(features, work / f"svm_{name}", seed=settings.seed)
    result, _ = evaluate_svm(model, features, "test")
    params = read_json(model / "params.json")
    return {"top1": result["top1"], "top5": result["top5"], "count": result["count"],
            "svm": params["best_params"], "cv_top1": params["cv_score"]}


def illustration_study(out: str | Path = "runs/study_illustration", source: str | Path | None = None,
                       settings: StudySettings | None = None, *, data_root: str | None = None,
                       progress: bool = True, source_overrides: list[str] = ()) -> dict:
    """Run the three steps and the reference row; returns the table (also in <out>/study.json and study.md)."""
    from lienzo.data.sources import load_source
    from lienzo.evaluate import evaluate

    settings = settings or StudySettings()
    work = new_run_dir(Path(out).parent, Path(out).name)
    log.info("illustration study in %s", work)

    if source is None:
        from lienzo.train import train

        values = {**SOURCE_PRESET, "run": {"dir": str(work), "name": "source", "seed": settings.seed}}
        values["trainer"] = {**values["trainer"], "max_epochs": settings.source_epochs, "progress": progress}
        if data_root:
            values["data"] = {**values["data"], "root": data_root}
        source = train(config_from_dict(values, list(source_overrides)))
    source = Path(source)
    loaded = load_run_network(source)
    channels = loaded.input_shape[0]
    source_cfg = loaded.config
    if source_cfg.data.name not in ("fashion_mnist",):
        log.warning("the source run was trained on %s; the target is made from Fashion-MNIST", source_cfg.data.name)

    photos_cfg = config_from_dict({"data": {"name": "fashion_mnist", "root": data_root or source_cfg.data.root}}).data
    _, photos = load_source(photos_cfg)
    if list(photos.class_names) != list(loaded.class_names):
        raise RunError(f"{source}: its classes {loaded.class_names[:3]}... are not Fashion-MNIST's")
    target = work / "target.h5"
    made = write_target(photos, target, settings.labelled_per_class, settings.seed, settings.max_test)
    _plot_examples(photos, made["drawings"], work / "target_examples.png")
    target_cfg = config_from_dict({"data": {"name": "hdf5", "root": str(target), "channels": channels}}).data
    n_labelled = len(made["labelled"])

    rows = []
    own = read_json(source / "metrics.json").get("test", {})
    rows.append({"step": "0", "method": "source network's softmax on the photos (its own domain)",
                 "top1": own.get("top1"), "top5": own.get("top5"), "count": own.get("count"), "target": False})

    result, _ = evaluate(source, ["data.name=hdf5", f"data.root={target}", f"data.channels={channels}"])
    rows.append({"step": "1", "method": "source network's softmax on the drawings",
                 "top1": result["top1"], "top5": result["top5"], "count": result["count"], "target": True})

    rows.append({"step": "2", "method": f"source penultimate features + SVM ({n_labelled} labelled drawings)",
                 **_svm_row(source, target_cfg, work, "source", settings, progress), "target": True})

    arch = source_cfg.model.arch
    reinit = list(settings.reinit) if settings.reinit is not None else first_layers(loaded.model)
    groups = finetune_groups(loaded.model, reinit, settings.low_lr)
    finetuned = _target_training(settings, target, channels, arch, work, "finetuned", str(source), groups,
                                 settings.high_lr, progress)
    ft = read_json(finetuned / "metrics.json")["test"]
    rows.append({"step": "3a", "method": f"fine-tuned ({', '.join(reinit) or 'nothing'} and head re-initialised at lr "
                                         f"{settings.low_lr:g}, the rest at {settings.high_lr:g}): its softmax",
                 "top1": ft["top1"], "top5": ft["top5"], "count": ft["count"], "target": True})
    rows.append({"step": "3b", "method": "fine-tuned penultimate features + SVM",
                 **_svm_row(finetuned, target_cfg, work, "finetuned", settings, progress), "target": True})

    scratch = _target_training(settings, target, channels, arch, work, "scratch", None, None, settings.low_lr,
                               progress)
    sc = read_json(scratch / "metrics.json")["test"]
    rows.append({"step": "ref", "method": f"same network trained from scratch on the {n_labelled} labelled drawings",
                 "top1": sc["top1"], "top5": sc["top5"], "count": sc["count"], "target": True})

    by_step = {r["step"]: r["top1"] for r in rows}
    checks = {
        "svm_beats_source_softmax": by_step["2"] > by_step["1"],
        "finetune_svm_beats_frozen_svm": by_step["3b"] > by_step["2"],
    }
    study = {"source": str(source), "arch": arch, "target": str(target), "labelled": n_labelled,
             "settings": {**{k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(settings).items()},
                          "reinit": reinit},
             "rows": rows, "checks": checks}
    write_json(work / "study.json", study)
    atomic_write_text(work / "study.md", format_table(study))
    log.info("study written to %s", work)
    study["dir"] = str(work)
    return study


def _plot_examples(photos: ImageArrays, drawings: torch.Tensor, path: Path, per_class: int = 2) -> Path:
    """Photos above their drawings, `per_class` of each class."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lienzo.report.plots import save_figure as _save

    names = photos.class_names
    picks = [i for c in range(len(names)) for i in (photos.labels == c).nonzero().flatten()[:per_class].tolist()]
    fig, axes = plt.subplots(2, len(picks), figsize=(len(picks) * 0.9, 2.2))
    for col, i in enumerate(picks):
        axes[0, col].imshow(photos.images[i, 0].numpy(), cmap="gray", vmin=0, vmax=255)
        axes[1, col].imshow(drawings[i].permute(1, 2, 0).numpy())
        axes[0, col].set_title(names[photos.labels[i]], fontsize=6)
        for ax in axes[:, col]:
            ax.axis("off")
    fig.suptitle("Fashion-MNIST photos (source) and their illustrated versions (target)", fontsize=8)
    return _save(fig, path)


def format_table(study: dict) -> str:
    lines = [f"Illustration study: source {study['arch']} ({study['source']}), "
             f"{study['labelled']} labelled drawings, target test set of {study['rows'][1]['count']} drawings",
             "", "| step | method | top-1 | top-5 |", "|---|---|---:|---:|"]
    for r in study["rows"]:
        top1 = "" if r["top1"] is None else f"{100 * r['top1']:.2f} %"
        top5 = "" if r.get("top5") is None else f"{100 * r['top5']:.2f} %"
        lines.append(f"| {r['step']} | {r['method']} | {top1} | {top5} |")
    checks = study["checks"]
    lines += ["", f"SVM on features beats the source softmax on the drawings: "
                  f"{'yes' if checks['svm_beats_source_softmax'] else 'NO'}",
              f"fine-tuning + SVM beats SVM on frozen features: "
              f"{'yes' if checks['finetune_svm_beats_frozen_svm'] else 'NO'}"]
    return "\n".join(lines) + "\n"
