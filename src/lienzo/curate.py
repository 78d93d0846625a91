"""`lienzo curate`: build datasets from loose image folders.

- match: descriptive file names + a class vocabulary → out/<class>/ (the thesis's Algorithm 1: split names
  into words, drop stopwords, match words and compounds against each class name and its synonyms);
- score: a trained classifier over a folder → per-image top-k CSV and per-class top-1/top-5/cross-entropy;
- filter: keep images whose top-1 probability is at least a threshold, or whose class is in a set;
- split: stratified train/val/test into folders or one HDF5 file (area-resized uint8, class names stored).
"""

from __future__ import annotations

import csv
import io
import logging
import os
import re
import shutil
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .data.folders import load_folder
from .data.hdf5 import write_hdf5
from .data.images import IMAGE_SUFFIXES, load_image
from .data.splits import stratified_split
from .errors import ConfigError, DataError, RunError
from .runs import atomic_write_text

log = logging.getLogger("lienzo")

STOPWORDS = frozenset("""a an and the of in on at to for with by from or as is are was be this that these those it its
into over under near my your our their his her img image images photo picture pic clipart clip art drawing
illustration vector icon stock free hd jpg jpeg png gif copy final new old small large big""".split())


def words(text: str) -> list[str]:
    """'BlackSwan_on-lake02' → ['black', 'swan', 'on', 'lake']: camelCase, separators and digits split words."""
    text = re.sub(r"([a-z])([A-Z])", r"\1 \2", text)
    return [w.lower() for w in re.split(r"[^A-Za-z]+", text) if w]


def read_vocabulary(source: str | list[str]) -> list[tuple[str, list[list[str]]]]:
    """(class name, synonyms as word lists). `source`: 'imagenet', a text file (one class per line, synonyms
    after commas: 'crane, whooping crane'), or a list of names."""
    if isinstance(source, list):
        lines = source
    elif source == "imagenet":
        import torchvision

        lines = list(torchvision.models.ResNet50_Weights.IMAGENET1K_V1.meta["categories"])
    else:
        path = Path(source)
        if not path.is_file():
            raise ConfigError(f"vocabulary file {path} not found (one class per line, synonyms after commas)")
        lines = [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
    vocabulary = []
    for line in lines:
        names = [n.strip() for n in line.split(",") if n.strip()]
        vocabulary.append((names[0], [words(n) for n in names if words(n)]))
    return vocabulary


def _matches(file_words: list[str], synonym: list[str]) -> bool:
    """The synonym's words appear consecutively, or glued together as a compound ('sun flower' ~ 'sunflower')."""
    target = "".join(synonym)
    for i in range(len(file_words)):
        joined = ""
        for j in range(i, len(file_words)):
            joined += file_words[j]
            if joined == target:
                return True
            if len(joined) >= len(target):
                break
    return False


def match(source: str | Path, vocabulary, out: str | Path, *, single_word: bool = False, min_images: int = 1,
          copy: bool = False) -> dict[str, int]:
    """Sort `source`'s images into out/<class>/ by their file names; returns the count per class kept.
    A name that matches several classes is ambiguous and skipped; classes under min_images are dropped."""
    source, out = Path(source), Path(out)
    if not source.is_dir():
        raise DataError(f"{source}: folder not found")
    if out.exists() and any(out.iterdir()):
        raise RunError(f"{out} exists and is not empty; choose a new output folder")
    vocab = read_vocabulary(vocabulary)
    if single_word:
        vocab = [(name, [s for s in syns if len(s) == 1]) for name, syns in vocab]
    files = sorted(p for p in source.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    by_class: dict[str, list[Path]] = defaultdict(list)
    ambiguous = 0
    for path in files:
        fw = [w for w in words(path.stem) if w not in STOPWORDS]
        hits = {}  # class index → the longest synonym it matched, glued ('blackswan')
        for c, (_, syns) in enumerate(vocab):
            found = [("".join(syn)) for syn in syns if _matches(fw, syn)]
            if found:
                hits[c] = max(found, key=len)
        # the more specific class wins: 'black swan' over 'swan' in 'a-black-swan'
        hits = {c: m for c, m in hits.items() if not any(m != o and m in o for o in hits.values())}
        if len(hits) == 1:
            by_class[vocab[next(iter(hits))][0]].append(path)
        elif len(hits) > 1:  # e.g. ImageNet's two 'crane' classes (the bird and the machine)
            ambiguous += 1
    kept = {name: paths for name, paths in sorted(by_class.items()) if len(paths) >= min_images}
    if not kept:
        raise DataError(f"{source}: no file name matched a class of the vocabulary"
                        + (f" with at least {min_images} images" if by_class else ""))
    for name, paths in kept.items():
        folder = out / safe_folder_name(name)
        folder.mkdir(parents=True, exist_ok=True)
        for path in paths:
            target = folder / path.name
            if copy:
                shutil.copy2(path, target)
            else:
                os.symlink(path.resolve(), target)
    log.info("matched %d of %d files into %d classes (%d ambiguous, %d classes under %d images dropped)",
             sum(map(len, kept.values())), len(files), len(kept), ambiguous, len(by_class) - len(kept), min_images)
    return {name: len(paths) for name, paths in kept.items()}


def safe_folder_name(name: str) -> str:
    return re.sub(r"[/\\\0]", "_", name)


def score(run: str | Path, folder: str | Path, out: str | Path, top_k: int = 5, batch_size: int = 256) -> dict:
    """Predict every image under folder/<class>/ (or a flat folder) with a run's best model; writes
    `out` (per image: path, true class, top-k classes and probabilities) and `out` with `.classes.csv`
    (per class: count, top1, top5, cross_entropy). Returns the per-class figures."""
    from .evaluate import load_run, predict_logits

    loaded = load_run(run)
    channels, height, width = loaded.input_shape
    folder = Path(folder)
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"{folder}: no images")
    by_folder = {safe_folder_name(n): n for n in loaded.class_names}  # 'T-shirt/top' lives in folder 'T-shirt_top'
    rows, per_class = [], defaultdict(lambda: {"count": 0, "top1": 0.0, "top5": 0.0, "cross_entropy": 0.0})
    for start in range(0, len(files), batch_size):
        chunk, images = [], []
        for path in files[start : start + batch_size]:
            try:
                images.append(load_image(path, channels, (height, width)))
                chunk.append(path)
            except DataError as err:
                log.warning("skipped %s", err)
        if not images:
            continue
        logits = predict_logits(loaded.model, torch.stack(images), loaded.mean, loaded.std)
        probs = logits.softmax(1)
        top_p, top_i = probs.topk(min(top_k, probs.shape[1]), 1)
        for r, path in enumerate(chunk):
            true = by_folder.get(path.parent.name, path.parent.name) if path.parent != folder else ""
            row = {"path": str(path), "true": true}
            for k in range(top_p.shape[1]):
                row[f"class{k + 1}"] = loaded.class_names[int(top_i[r, k])]
                row[f"prob{k + 1}"] = round(float(top_p[r, k]), 6)
            rows.append(row)
            if true in loaded.class_names:
                c = loaded.class_names.index(true)
                stats = per_class[true]
                stats["count"] += 1
                ranked = top_i[r].tolist()
                stats["top1"] += float(ranked[0] == c)
                stats["top5"] += float(c in ranked[:5])
                stats["cross_entropy"] += float(-torch.log(probs[r, c].clamp_min(1e-12)))
    summary = {name: {"count": s["count"], **{k: s[k] / s["count"] for k in ("top1", "top5", "cross_entropy")}}
               for name, s in sorted(per_class.items())}
    out = Path(out)
    atomic_write_text(out, _csv(rows))
    atomic_write_text(out.with_suffix(".classes.csv"),
                      _csv([{"class": n, **v} for n, v in sorted(summary.items(), key=lambda kv: -kv[1]["top1"])]))
    return summary


def filter_scored(scores: str | Path, out: str | Path, *, min_prob: float | None = None,
                  classes: list[str] | None = None, by: str = "predicted", copy: bool = False) -> dict[str, int]:
    """Keep images from a `score` CSV whose top-1 probability ≥ min_prob and/or whose class is in `classes`,
    into out/<class>/ (class = the predicted one, or the true one with by='true'). Returns counts."""
    path = Path(scores)
    if not path.is_file():
        raise DataError(f"{path}: scores file not found (made by 'lienzo curate score')")
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise RunError(f"{out} exists and is not empty; choose a new output folder")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or "prob1" not in rows[0]:
        raise DataError(f"{path}: not a 'lienzo curate score' CSV")
    counts: Counter = Counter()
    for row in rows:
        name = row["class1"] if by == "predicted" else row["true"]
        if min_prob is not None and float(row["prob1"]) < min_prob:
            continue
        if classes is not None and name not in classes:
            continue
        target = out / safe_folder_name(name) / Path(row["path"]).name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(row["path"], target) if copy else os.symlink(Path(row["path"]).resolve(), target)
        counts[name] += 1
    if not counts:
        raise DataError(f"{path}: no image passed the filter")
    return dict(sorted(counts.items()))


def split(folder: str | Path, out: str | Path, *, val: float = 0.1, test: float = 0.1, seed: int = 0,
          image_size: tuple[int, int] | None = None, channels: int | None = None) -> dict[str, int]:
    """Stratified train/val/test split of folder/<class>/ images: into out/{train,val,test}/<class>/ (links),
    or, when `out` ends in .h5, into one HDF5 file with those groups (uint8 images resized with area
    interpolation to image_size, labels, class_names)."""
    folder, out = Path(folder), Path(out)
    if out.exists() and (out.is_file() or any(out.iterdir())):
        raise RunError(f"{out} exists; choose a new output")
    if not 0 <= val < 1 or not 0 <= test < 1 or val + test >= 1:
        raise ConfigError(f"split fractions val={val} test={test} must be in [0, 1) and sum below 1")
    to_hdf5 = out.suffix in (".h5", ".hdf5")
    if to_hdf5:
        arrays = load_folder(folder, image_size=image_size, channels=channels)
        labels, names, paths = arrays.labels, arrays.class_names, arrays.paths
    else:
        from .data.folders import list_class_folders

        classes = list_class_folders(folder)
        names = [n for n, _ in classes]
        paths = [str(p) for _, files in classes for p in files]
        labels = torch.tensor([i for i, (_, files) in enumerate(classes) for _ in files])
    rest, test_idx = stratified_split(labels, test, seed) if test > 0 else (torch.arange(len(labels)), torch.tensor([], dtype=torch.long))
    rest = torch.as_tensor(rest)
    train_rel, val_rel = stratified_split(labels[rest], val / (1 - test), seed + 1) if val > 0 else (torch.arange(len(rest)), torch.tensor([], dtype=torch.long))
    parts = {"train": rest[torch.as_tensor(train_rel)], "val": rest[torch.as_tensor(val_rel)], "test": torch.as_tensor(test_idx)}
    counts = {}
    if to_hdf5:
        partial = out.with_name(out.name + ".partial")
        partial.unlink(missing_ok=True)
        for part, index in parts.items():
            if len(index):
                write_hdf5(partial, arrays.images[index].permute(0, 2, 3, 1).numpy(), labels[index].numpy(), names, part)
                counts[part] = len(index)
        os.replace(partial, out)
    else:
        for part, index in parts.items():
            for i in index.tolist():
                target = out / part / safe_folder_name(names[int(labels[i])]) / Path(paths[i]).name
                target.parent.mkdir(parents=True, exist_ok=True)
                os.symlink(Path(paths[i]).resolve(), target)
            counts[part] = len(index)
    return counts


def _csv(rows: list[dict]) -> str:
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return buffer.getvalue()
