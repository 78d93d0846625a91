"""`lienzo study captions`: the caption thesis's two models, reproducible offline in minutes.

1. "fashion scenes" (lienzo.tasks.caption.scenes): 64×64 images of 1–3 tinted Fashion-MNIST items, 5 template
   captions each (synonyms, word order, counts, colours, left/right/above/below); 1,000 val and 1,000 test images;
2. the image network: a full-width AirNet (fashion_fast's recipe) trained on the scenes to name the largest item's
   colour and class; its last convolutional grid (128×7×7) is the image feature, cached once;
3. retrieval (`caption.model: rank`, the thesis's bidirectional recurrent sentence net and sum of hinges) and
   generation (`showtell`) trained on those features;
4. the table: R@1/5/10 both ways against random ranking; BLEU-4, ROUGE-L and CIDEr-D of beam-3 captions against
   beam 1 (greedy) and against the captions of the nearest training image (nearest-neighbour baseline).

    study = captions_study("runs/study_captions")       # also study.json, study.md and study.html in that folder
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from lienzo.runs import Laps, new_run_dir, read_json, write_study

log = logging.getLogger("lienzo")

COLOURS_FIRST = True  # the classifier's label is "<colour> <class>" of the largest item


@dataclass(frozen=True)
class CaptionStudySettings:
    train: int = 6000  # training scenes (Flickr8k's 6,000), each with 5 captions
    val: int = 1000
    test: int = 1000
    scorer_epochs: int = 8  # AirNet epochs of the image network
    rank_epochs: int = 15
    showtell_epochs: int = 30
    word_dim: int = 128
    joint_dim: int = 256  # rank: the joint space
    hidden: int = 512  # showtell: the LSTM
    grid_pool: int = 3  # the 7×7 grid averaged to 3×3 cells: where the items are survives
    seed: int = 0


SCORER_PRESET = {  # fashion_fast's recipe, full-width AirNet, on the scenes (no flips: they swap left and right)
    "data": {"name": "hdf5", "batch_size": 256, "augment": "none", "val_fraction": 0.0},
    "model": {"arch": "airnet"},
    "optim": {"name": "sgd", "lr": 0.5, "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4,
              "label_smoothing": 0.1, "schedule": "onecycle", "warmup_fraction": 0.25},
    "trainer": {"monitor": "train_loss"},
}


def with_overrides(settings: CaptionStudySettings, **values) -> CaptionStudySettings:
    return replace(settings, **{k: v for k, v in values.items() if v is not None})


# -- steps -----------------------------------------------------------------------------------------

def scene_labels(json_path: Path) -> tuple[dict[str, list], list[str]]:
    """{split: [(file, label)]} naming each scene's largest item ("red sneaker"), and the label names."""
    import json

    images = json.loads(json_path.read_text())["images"]
    names: list[str] = []
    out: dict[str, list] = {}
    for image in images:
        largest = max(image["items"], key=lambda it: (it["box"][2] - it["box"][0]) * (it["box"][3] - it["box"][1]))
        name = f"{largest['colour']} {largest['class']}"
        if name not in names:
            names.append(name)
        out.setdefault(image["split"], []).append((f"{image['filepath']}/{image['filename']}", name))
    names.sort()
    return {s: [(f, names.index(n)) for f, n in rows] for s, rows in out.items()}, names


def write_scorer_data(json_path: Path, out: Path) -> Path:
    """The scenes as a classification HDF5 (train: the training scenes; test: the validation ones)."""
    splits, names = scene_labels(json_path)
    root = json_path.parent
    from lienzo.data.hdf5 import write_hdf5

    tmp = out.with_name(out.name + ".tmp")
    tmp.unlink(missing_ok=True)
    try:
        for split, group in (("train", "train"), ("val", "test")):
            rows = splits[split]
            images = np.stack([np.asarray(Image.open(root / file).convert("RGB")) for file, _ in rows])
            write_hdf5(tmp, images, np.array([label for _, label in rows], dtype=np.int64), names, group=group)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(out)
    return out


def caption_values(settings: CaptionStudySettings, json_path: Path, scorer: Path, work: Path, name: str, model: str,
                   epochs: int, progress: bool) -> dict:
    """The config of one caption run of the study."""
    caption = {"model": model, "backbone": str(scorer), "weights": None, "layer": "features",
               "cache": str(work / "cache"), "grid_pool": settings.grid_pool, "min_count": 5, "max_length": 16,
               "word_dim": settings.word_dim, "hidden": settings.hidden, "joint_dim": settings.joint_dim, "beam": 3}
    if model == "rank":
        caption.update(encoder="brnn", loss="sum")
    return {"task": "caption",
            "data": {"captions": str(json_path), "batch_size": 128},
            "optim": {"name": "adam", "lr": 1e-3 if model == "rank" else 2e-3, "schedule": "cosine"},
            "caption": caption,
            "trainer": {"max_epochs": epochs, "progress": progress},
            "run": {"dir": str(work), "name": name, "seed": settings.seed}}


def _loaded(run: Path):
    from lienzo.evaluate import load_run
    from lienzo.tasks import get_task

    loaded = load_run(run, "best")
    data = get_task("caption").data_module(loaded.config, loaded.info)
    data.setup("test")
    return loaded, data


def nearest_neighbour_captions(module, data) -> list[str]:
    """For each test image, the first caption of the training image whose features are nearest (cosine)."""
    train, test = data.splits["train"], data.splits["test"]
    feats = data.features.features

    def prepared(split):
        x = module.prepare(feats[split.image_rows])
        return torch.nn.functional.normalize(x, dim=1)

    nearest = (prepared(test) @ prepared(train).T).argmax(1)
    return [train.references[int(i)][0] for i in nearest]


def generation_rows(run: Path) -> list[dict]:
    """Beam 3 (the run's metrics), beam 1 and the nearest-neighbour baseline on the test split."""
    from lienzo.metrics.language import caption_metrics
    from lienzo.tasks.caption.evaluate import generate_split

    loaded, data = _loaded(run)
    test = data.splits["test"]
    refs = {str(i): test.references[i] for i in range(len(test))}
    wanted = ("bleu", "rouge", "cider")

    def scored(name: str, captions: list[str]) -> dict:
        result = caption_metrics(refs, {str(i): c or "<empty>" for i, c in enumerate(captions)}, metrics=wanted)
        return {"name": name, "bleu4": result["bleu4"], "rouge_l": result["rouge_l"], "cider": result["cider"],
                "distinct": len(set(captions))}

    rows = []
    for beam in (3, 1):
        words = generate_split(loaded.module, data, "test", beam=beam)
        rows.append(scored(f"Show and Tell, beam {beam}" + (" (greedy)" if beam == 1 else ""),
                           [" ".join(w) for w in words]))
    rows.append(scored("nearest training image's caption", nearest_neighbour_captions(loaded.module, data)))
    return rows


def retrieval_rows(run: Path, test_images: int) -> list[dict]:
    from lienzo.metrics.retrieval import random_baseline

    test = read_json(run / "metrics.json")["test"]
    keys = ("i2t_r1", "i2t_r5", "i2t_r10", "i2t_medr", "t2i_r1", "t2i_r5", "t2i_r10", "t2i_medr")
    chance = random_baseline(test_images, 5)
    return [{"name": "rank (bidirectional net, sum of hinges)", **{k: test[k] for k in keys}},
            {"name": "random ranking (expected)", **{k: chance[k] for k in keys}}]


def checks(retrieval: list[dict], generation: list[dict]) -> dict:
    model, chance = retrieval
    beam3, _, nn = generation
    return {
        "retrieval_far_above_random": bool(model["i2t_r1"] >= 5 * chance["i2t_r1"] and model["t2i_r1"] >= 5 * chance["t2i_r1"]),
        "generation_beats_nearest_neighbour_cider": bool(beam3["cider"] > nn["cider"]),
    }


# -- the study ---------------------------------------------------------------------------------------

def captions_study(out: str | Path = "runs/study_captions", settings: CaptionStudySettings | None = None, *,
                   fashion_root: str | None = None, progress: bool = True) -> dict:
    """Run the study (see the module's docstring) in a new folder; returns the table (also written as
    study.json, study.md and study.html there)."""
    from lienzo.tasks.caption.scenes import build_fashion_scenes
    from lienzo.tasks import config_from_dict
    from lienzo.train import train

    settings = settings or CaptionStudySettings()
    work = new_run_dir(Path(out).parent, Path(out).name)
    laps = Laps()
    seconds, lap = laps.seconds, laps.lap

    log.info("captions study in %s: [1/5] fashion scenes (%d train, %d val, %d test)", work, settings.train,
             settings.val, settings.test)
    json_path = build_fashion_scenes(work / "scenes", train=settings.train, val=settings.val, test=settings.test,
                                     seed=settings.seed, fashion_root=fashion_root, progress=progress)
    lap("scenes")
    log.info("[2/5] the image network: AirNet naming the largest item, %d epochs", settings.scorer_epochs)
    values = {**SCORER_PRESET, "run": {"dir": str(work), "name": "image_net", "seed": settings.seed}}
    values["data"] = {**values["data"], "root": str(write_scorer_data(json_path, work / "scenes_items.h5"))}
    values["trainer"] = {**values["trainer"], "max_epochs": settings.scorer_epochs, "progress": progress}
    scorer = train(config_from_dict(values))
    lap("image_net")
    runs = {}
    for step, (name, model, epochs) in enumerate((("rank", "rank", settings.rank_epochs),
                                                  ("showtell", "showtell", settings.showtell_epochs)), 3):
        log.info("[%d/5] %s, %d epochs", step, model, epochs)
        runs[name] = train(config_from_dict(caption_values(settings, json_path, scorer, work, name, model, epochs,
                                                           progress)))
        lap(name)
    log.info("[5/5] baselines and the table")
    retrieval = retrieval_rows(runs["rank"], settings.test)
    generation = generation_rows(runs["showtell"])
    lap("table")
    image_net = read_json(scorer / "metrics.json")["test"]
    study = {"settings": asdict(settings), "image_net": {"run": scorer.name, "top1": image_net.get("top1")},
             "retrieval": retrieval, "generation": generation, "checks": checks(retrieval, generation),
             "seconds": seconds, "examples": _examples(runs["showtell"])}
    laps.total()
    return write_study(work, study, format_table(study), study_page(study, work.name))


def _examples(run: Path) -> list[dict]:
    path = run / "plots" / "caption_examples.json"
    import json

    return json.loads(path.read_text())[:6] if path.is_file() else []


def format_table(study: dict) -> str:
    """The study's tables as Markdown."""
    lines = ["## Retrieval (test, 1,000 images, 5 captions each)", "",
             "| model | i→t R@1 | R@5 | R@10 | med r | t→i R@1 | R@5 | R@10 | med r |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in study["retrieval"]:
        lines.append(f"| {r['name']} | " + " | ".join(
            f"{r[k]:.1f}" if "medr" not in k else f"{r[k]:.0f}" for k in
            ("i2t_r1", "i2t_r5", "i2t_r10", "i2t_medr", "t2i_r1", "t2i_r5", "t2i_r10", "t2i_medr")) + " |")
    lines += ["", "## Generation (test)", "", "| captions | BLEU-4 | ROUGE-L | CIDEr-D | distinct |",
              "|---|---:|---:|---:|---:|"]
    for r in study["generation"]:
        lines.append(f"| {r['name']} | {r['bleu4']:.3f} | {r['rouge_l']:.3f} | {r['cider']:.3f} | {r['distinct']} |")
    c = study["checks"]
    lines += ["", f"- retrieval R@1 at least 5× random, both ways: {'yes' if c['retrieval_far_above_random'] else 'NO'}",
              f"- generation beats the nearest-neighbour baseline on CIDEr-D: "
              f"{'yes' if c['generation_beats_nearest_neighbour_cider'] else 'NO'}",
              f"- image network: top-1 {100 * (study['image_net']['top1'] or 0):.1f} % on naming the largest item "
              f"(validation scenes)", f"- {study['seconds']['total'] / 60:.1f} minutes", ""]
    return "\n".join(lines)


def study_page(study: dict, title: str) -> str:
    """study.html: the tables as study.md has them, and test scenes with their generated and human captions."""
    from lienzo.report.content import Image, Lines, Page, ReportSection, Table, Text
    from lienzo.report.pages import render_page
    from lienzo.tasks.caption.evaluate import thumbnail_name

    sections = [ReportSection("", pre=format_table(study))]
    if study["examples"]:
        rows = [[Image(f"showtell/plots/examples/{thumbnail_name(e['file'])}", e["file"], 96), Text(e["generated"]),
                 Lines(e["references"])] for e in study["examples"]]
        sections.append(ReportSection("Test scenes", table=Table(["image", "generated", "ground truth"], rows)))
    return render_page(Page(title, sections=sections))
