"""The GAN thesis's experiment in miniature, offline: does the object's mask as a fourth channel help a
WGAN-GP learn objects?

The thesis trained the same WGAN-GP on 64×64 images as RGB and as RGB + the object's segmentation mask and
compared Inception Scores (for example COCO 7.37 vs 7.50). Here the data are the composites of
`lienzo.data.composites` (Fashion-MNIST garments, colourised, pasted onto crops of the photos scikit-image
and scikit-learn ship), which every machine can make in seconds:

1. composites: `composites.h5` (RGB + mask) and `composites_rgb.h5` (the same RGB, no mask);
2. the domain scorer: a lienzo classifier (the full-width AirNet, the fashion_fast recipe) trained on the composites'
   RGB to name the garment; its pre-logits and logits give "domain" FID/KID and IS (Inception weights are
   not needed), or `--scorer RUN` reuses one;
3. two WGAN-GP runs, same network, budget and seed: 3 channels on composites_rgb.h5, 4 on composites.h5;
4. IS, FID and KID of both (the 4-channel samples scored on their RGB part, as the thesis), of the
   untrained generator (the start) and of real data (train composites against test: the bound);
5. study.json, study.md and study.html (the table and the sample grids: RGB, the mask as transparency,
   the mask applied at 50 %), with the thesis's direction (lower FID, higher IS with the mask) checked.

Both runs are scored at their last step (`gan.score_every: 0`: no checkpoint is chosen on the test split),
with the same samples count and noise seed.

    study = masks_study("runs/study_masks")                       # ~35 minutes on a 2-core CPU
    study = masks_study("runs/study_masks_full", FULL_SETTINGS)   # the paper's size: a GPU
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from lienzo.data.composites import PHOTOS, make_composites, write_composites
from lienzo.data.idx import FASHION_MNIST_CLASSES
from lienzo.errors import RunError
from lienzo.runs import Laps, new_run_dir, read_json, write_study

log = logging.getLogger("lienzo")


@dataclass
class MasksStudySettings:
    n_train: int = 20000  # composites made from Fashion-MNIST's train split (each garment once)
    n_test: int = 5000  # composites from its test split: the FID reference
    size: int = 32  # pixels (the paper's CIFAR-10 model; the thesis used 64)
    scorer_epochs: int = 10  # AirNet epochs of the domain scorer
    arch: str = "wgan_resnet"
    maps: int = 32  # feature maps of generator and critic (the paper's 128: --full)
    z_dim: int = 128
    steps: int = 1200  # generator steps of each run (5 critic steps each)
    steps_per_epoch: int = 100  # generator steps between history rows and sample grids
    critic_batch: int = 64  # the thesis's critic batch
    generator_batch: int = 128  # and generator batch
    eval_samples: int = 5000  # samples scored per run (the paper's 50,000: --full)
    precision: str = "auto"  # bf16 where the CPU or GPU has it: ~1.6× faster here than fp32
    seed: int = 0


# The paper-sized study, for a GPU: 64 px as the thesis, 128 maps, 100k generator steps, 50,000 samples.
FULL_SETTINGS = MasksStudySettings(n_train=60000, n_test=10000, size=64, scorer_epochs=20, maps=128, steps=100_000,
                                   steps_per_epoch=1000, eval_samples=50000)

SCORER_PRESET = {  # fashion_fast's recipe with the full-width AirNet, on the composites' RGB
    "data": {"name": "hdf5", "batch_size": 256, "augment": "basic", "val_fraction": 0.0},
    "model": {"arch": "airnet"},
    "optim": {"name": "sgd", "lr": 0.5, "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4,
              "label_smoothing": 0.1, "schedule": "onecycle", "warmup_fraction": 0.25},
    "trainer": {"monitor": "train_loss"},
}


def ema_decay(steps: int) -> float:
    """The generator average's decay: the paper's 0.999 for long runs, a horizon of a tenth of the run for
    short ones (at 0.999, 30 % of the average after 1,200 steps would still be the initial weights)."""
    return round(max(0.0, min(0.999, 1.0 - 10.0 / steps)), 4)


def gan_values(settings: MasksStudySettings, root: Path, channels: int, scorer: str | Path | None,
               run_dir: Path, name: str, progress: bool = True) -> dict:
    """The config of one arm of the study (configs/gan_study_masks.yaml is the 4-channel arm as a preset)."""
    s = settings
    return {
        "task": "generate",
        "data": {"name": "hdf5", "root": str(root), "channels": channels, "batch_size": s.critic_batch},
        "model": {"arch": s.arch, "maps": s.maps, "z_dim": s.z_dim},
        "optim": {"name": "adam", "lr": 2e-4, "betas": [0.0, 0.9], "schedule": "linear", "warmup_fraction": 0.0},
        "trainer": {"max_steps": s.steps, "precision": s.precision, "progress": progress},
        "gan": {"loss": "wgan-gp", "gp_weight": 10.0, "critic_steps": 5, "generator_batch": s.generator_batch,
                "ema_decay": ema_decay(s.steps), "steps_per_epoch": s.steps_per_epoch, "grid": 64,
                "scorer": None if scorer is None else str(scorer), "score_every": 0,
                "eval_samples": s.eval_samples},
        "run": {"dir": str(run_dir), "name": name, "seed": s.seed},
    }


# -- the steps ---------------------------------------------------------------------------------------

def _composites(settings: MasksStudySettings, work: Path, fashion_root: str | None) -> tuple[Path, Path]:
    from lienzo.tasks.generate.samples import save_sample_grids

    train, test = make_composites(fashion_root, settings.n_train, settings.n_test, settings.size, settings.seed)
    masked = write_composites(work / "composites.h5", train, test)
    rgb = write_composites(work / "composites_rgb.h5", train, test, rgb=True)
    save_sample_grids(test.images[:64].float() / 127.5 - 1, work / "plots", "real_composites")
    return masked, rgb


def _train_scorer(settings: MasksStudySettings, rgb_file: Path, work: Path, progress: bool) -> Path:
    from lienzo.tasks import config_from_dict
    from lienzo.train import train

    values = {**SCORER_PRESET, "run": {"dir": str(work), "name": "scorer", "seed": settings.seed}}
    values["data"] = {**values["data"], "root": str(rgb_file)}
    values["trainer"] = {**values["trainer"], "max_epochs": settings.scorer_epochs, "progress": progress}
    return train(config_from_dict(values))


def _check_scorer(run: Path) -> dict:
    """A given scorer run must name Fashion-MNIST's classes: the IS counts how surely it names them."""
    from lienzo.metrics.generative import DomainScorer

    scorer = DomainScorer(run)
    if list(scorer.class_names) != list(FASHION_MNIST_CLASSES):
        raise RunError(f"--scorer {run}: its classes {scorer.class_names[:3]}... are not Fashion-MNIST's; "
                       "give a classifier trained on the composites (or leave --scorer out to train one)")
    metrics = read_json(run / "metrics.json") if (run / "metrics.json").is_file() else {}
    return {"run": str(run), "arch": metrics.get("arch"), "top1": (metrics.get("test") or {}).get("top1")}


def _untrained_row(settings: MasksStudySettings, scorer_run: Path, reference_features) -> dict:
    """IS/FID of the networks' start: the generator as built with the study's seed, before any step."""
    from lienzo.metrics.generative import generative_metrics, make_scorer
    from lienzo.models.registry import create_model

    torch.manual_seed(settings.seed)
    gan = create_model(settings.arch, channels=3, image_size=settings.size, maps=settings.maps, z_dim=settings.z_dim)
    generator = gan.generator.eval()
    noise = torch.randn(settings.eval_samples, settings.z_dim, generator=torch.Generator().manual_seed(settings.seed))
    with torch.no_grad():
        fake = [generator(z) for z in noise.split(500)]
    result = generative_metrics(make_scorer(str(scorer_run)), fake, reference_features)
    return {"fid": result["fid"], "is_mean": result["is_mean"], "is_std": result["is_std"],
            "kid_mean": result["kid_mean"], "kid_std": result["kid_std"]}


def _reference_features(scorer_run: Path, masked_file: Path, n: int):
    from lienzo.data.hdf5 import load_hdf5
    from lienzo.metrics.generative import make_scorer, score_real

    test = load_hdf5(masked_file, "test")  # as the runs' own scoring reads it: the first n, in [-1, 1]
    features, _ = score_real(make_scorer(str(scorer_run)), test.images[:n])  # uint8 goes in as it is
    return features


def _row(name: str, channels: int, run: Path) -> dict:
    metrics = read_json(run / "metrics.json")
    test = metrics["test"]
    return {"name": name, "channels": channels, "run": run.name, "fid": test["fid"], "is_mean": test["is_mean"],
            "is_std": test["is_std"], "kid_mean": test.get("kid_mean"), "kid_std": test.get("kid_std"),
            "minutes": metrics.get("train_seconds", 0.0) / 60, "samples": test["samples"]}


# -- the study ---------------------------------------------------------------------------------------

def masks_study(out: str | Path = "runs/study_masks", settings: MasksStudySettings | None = None, *,
                scorer: str | Path | None = None, fashion_root: str | None = None, progress: bool = True) -> dict:
    """Run the study (see the module's docstring) in a new folder; returns the table (also in
    <folder>/study.json, study.md and study.html)."""
    from lienzo.tasks import config_from_dict
    from lienzo.train import train

    settings = settings or MasksStudySettings()
    scorer_info = _check_scorer(Path(scorer)) if scorer is not None else None  # before any work: a bad run fails fast
    work = new_run_dir(Path(out).parent, Path(out).name)
    laps = Laps()
    seconds, lap = laps.seconds, laps.lap

    log.info("masks study in %s: [1/5] composites (%d train, %d test, %d px)", work, settings.n_train,
             settings.n_test, settings.size)
    masked_file, rgb_file = _composites(settings, work, fashion_root)
    lap("composites")

    if scorer is None:
        log.info("[2/5] the domain scorer: AirNet on the composites' RGB, %d epochs", settings.scorer_epochs)
        scorer = _train_scorer(settings, rgb_file, work, progress)
    scorer = Path(scorer)
    scorer_info = scorer_info or _check_scorer(scorer)
    lap("scorer")

    runs = {}
    for step, (name, channels, root) in enumerate((("gan_rgb", 3, rgb_file), ("gan_rgbmask", 4, masked_file)), 3):
        log.info("[%d/5] WGAN-GP with %d channels: %s, %d maps, %d generator steps", step, channels, settings.arch,
                 settings.maps, settings.steps)
        runs[name] = train(config_from_dict(gan_values(settings, root, channels, scorer, work, name, progress)))
        lap(name)

    log.info("[5/5] the untrained generator and the table")
    rgb_row, mask_row = _row("WGAN-GP, RGB", 3, runs["gan_rgb"]), _row("WGAN-GP, RGB + mask (its RGB)", 4,
                                                                        runs["gan_rgbmask"])
    real = read_json(runs["gan_rgb"] / "metrics.json")["test"]
    reference = _reference_features(scorer, masked_file, settings.eval_samples)
    start = _untrained_row(settings, scorer, reference)
    lap("untrained")
    rows = [
        {"name": "real composites (train against test: the bound)", "channels": 3, "run": None,
         "fid": real["real_fid"], "is_mean": real["real_is_mean"], "is_std": real["real_is_std"],
         "kid_mean": real.get("real_kid_mean"), "kid_std": real.get("real_kid_std"), "minutes": None,
         "samples": real["samples"]},
        {"name": "untrained generator (step 0)", "channels": 3, "run": None, **start, "minutes": None,
         "samples": settings.eval_samples},
        rgb_row, mask_row,
    ]
    study = {"settings": asdict(settings), "photos": list(PHOTOS), "scorer": scorer_info,
             "reference": f"{settings.n_test} test composites (first {min(settings.eval_samples, settings.n_test)})",
             "rows": rows, "checks": direction(rgb_row, mask_row), "seconds": seconds,
             "grids": _grids(work, runs)}
    laps.total()
    return write_study(work, study, format_table(study), study_page(study, work.name))


def direction(rgb: dict, mask: dict) -> dict:
    """The thesis's direction (the mask helps) on each metric, and whether the gap exceeds its noise:
    the IS's std over its splits, the KID's std over its subsets (FID has no error bar of its own)."""
    is_gap, kid_gap = mask["is_mean"] - rgb["is_mean"], (mask["kid_mean"] or 0.0) - (rgb["kid_mean"] or 0.0)
    checks = {
        "mask_lowers_fid": mask["fid"] < rgb["fid"],
        "mask_raises_is": mask["is_mean"] > rgb["is_mean"],
        "mask_lowers_kid": kid_gap < 0,
        "fid_gap": mask["fid"] - rgb["fid"],
        "is_gap": is_gap,
        "is_gap_beyond_std": abs(is_gap) > max(rgb["is_std"], mask["is_std"]),
        "kid_gap_beyond_std": abs(kid_gap) > max(rgb["kid_std"] or 0.0, mask["kid_std"] or 0.0),
    }
    votes = {"FID": checks["mask_lowers_fid"], "IS": checks["mask_raises_is"], "KID": checks["mask_lowers_kid"]}
    if all(votes.values()):
        verdict = "the mask helped: lower FID and KID, higher IS"
    elif not any(votes.values()):
        verdict = "the mask did not help: higher FID and KID, lower IS"
    else:
        verdict = "mixed: " + ", ".join(f"{k} {'better' if v else 'worse'} with the mask" for k, v in votes.items())
    if not (checks["is_gap_beyond_std"] or checks["kid_gap_beyond_std"]):
        verdict += " (the IS and KID gaps are within their std: not conclusive)"
    checks["verdict"] = verdict
    return checks


def _grids(work: Path, runs: dict[str, Path]) -> dict[str, list[str]]:
    """The last sample grids of each run (three views for RGB + mask), as paths relative to the study."""
    from lienzo.tasks.generate.samples import MASK_VIEWS

    grids = {"real": [f"plots/real_composites{s}.png" for s in MASK_VIEWS if (work / f"plots/real_composites{s}.png").is_file()]}
    for name, run in runs.items():
        steps = sorted(p for p in (run / "plots").glob("samples_step*.png") if not p.stem.endswith(("_mask", "_masked")))
        if steps:
            last = steps[-1].stem
            grids[name] = [f"{run.name}/plots/{last}{s}.png" for s in MASK_VIEWS if (run / "plots" / f"{last}{s}.png").is_file()]
    return grids


# -- tables ------------------------------------------------------------------------------------------

def _num(value, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _cells(row: dict) -> list[str]:
    return [row["name"], str(row["channels"]), f"{_num(row['is_mean'])} ± {_num(row['is_std'])}", _num(row["fid"]),
            f"{_num(row['kid_mean'], 4)} ± {_num(row['kid_std'], 4)}", _num(row["minutes"], 1)]


HEADER = ["", "channels", "IS", "FID", "KID", "train minutes"]


def _summary(study: dict) -> list[str]:
    s, c = study["settings"], study["checks"]
    top1 = study["scorer"].get("top1")
    return [
        f"Masks study: {s['arch']} with {s['maps']} maps, {s['steps']} generator steps (5 critic steps each), "
        f"{s['size']} px, {s['n_train']} train composites; domain IS/FID/KID with the features of "
        f"{Path(study['scorer']['run']).name}" + (f" (test top-1 {100 * top1:.1f} %)" if top1 is not None else "")
        + f", {study['rows'][2]['samples']} samples against {study['reference']}.",
        (f"The thesis's direction (the mask helps): {c['verdict']}. FID {c['fid_gap']:+.2f} with the mask "
         f"({'lower' if c['mask_lowers_fid'] else 'higher'}), IS {c['is_gap']:+.2f} "
         f"({'beyond' if c['is_gap_beyond_std'] else 'within'} the IS's std), KID "
         f"{'beyond' if c['kid_gap_beyond_std'] else 'within'} the KID's std."),
    ]


def format_table(study: dict) -> str:
    """The study as markdown: a summary line, the table, the verdict."""
    first, verdict = _summary(study)
    lines = [first, "", "| " + " | ".join(HEADER) + " |", "|---|---:|---:|---:|---:|---:|"]
    lines += ["| " + " | ".join(_cells(r)) + " |" for r in study["rows"]]
    return "\n".join([*lines, "", verdict]) + "\n"


def study_page(study: dict, title: str) -> str:
    """study.html: the summary, the table and the sample grids (paths relative to the study folder)."""
    from lienzo.report.content import Image, Page, ReportSection, Table, Text
    from lienzo.report.pages import render_page

    first, verdict = _summary(study)
    sections = [ReportSection("", table=Table(HEADER, [_cells(r) for r in study["rows"]]), text=[Text(verdict)])]
    captions = {"real": "Real composites (test split)", "gan_rgb": "WGAN-GP, RGB: samples at the last step",
                "gan_rgbmask": "WGAN-GP, RGB + mask: samples at the last step"}
    views = ["RGB", "mask as transparency over a checkerboard", "mask applied at 50 %"]
    for key, paths in study["grids"].items():
        sections.append(ReportSection(captions.get(key, key), [Image(path, view, 340, view, pixelated=True)
                                                               for view, path in zip(views, paths)]))
    settings = Table([], [[k, str(v)] for k, v in study["settings"].items()])  # no header row
    sections.append(ReportSection("Settings", table=settings, text=[
        f"Backgrounds: {', '.join(study['photos'])} (train crops from the first 60 % of each photo along its long "
        "side, test crops from the rest).", f"Seconds per stage: {study['seconds']}"]))
    return render_page(Page(title, first, sections))


def with_overrides(settings: MasksStudySettings, **values) -> MasksStudySettings:
    """`settings` with the given fields changed (None values are left as they are)."""
    return replace(settings, **{k: v for k, v in values.items() if v is not None})
