"""`lienzo curate`: build datasets from loose image folders.

- match: descriptive file names + a class vocabulary → out/<class>/ (the thesis's Algorithm 1: split names
  into words, drop stopwords, match words and compounds, singular or plural, against each class name and its
  synonyms); the files left out are listed in out/unsorted.csv;
- score: a trained classifier over a folder → per-image top-k CSV and per-class top-1/top-k/cross-entropy,
  computed as `lienzo evaluate` does (the run's test-time augmentation, precision and memory layout);
- filter: keep images whose top-1 probability is at least a threshold, or whose class is in a set;
- filter an HDF5 file (RGB, grey, or RGB+mask as `coco-masks` and `mask-pairs` write): a classify run scores
  the image part and the samples it is sure enough of keep every channel, in the same layout;
- split: stratified train/val/test into folders or one HDF5 file (area-resized uint8, class names stored).
- coco-masks, mask-pairs: RGB+mask HDF5 files for the GAN pipeline, from COCO instances or image/mask
  folders (see lienzo.curate.masks).

No step ever overwrites a file: two images with one name (cat/1.jpg, dog/1.jpg) landing in one folder
become 1.jpg and 1-2.jpg, and each rename is logged and counted.
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
from PIL import Image

from lienzo.data.arrays import ImageArrays, to_channels
from lienzo.data.folders import load_folder
from lienzo.data.hdf5 import load_hdf5, write_hdf5
from lienzo.data.images import IMAGE_SUFFIXES, load_image
from lienzo.curate.masks import coco_masks, mask_pairs  # noqa: F401  (curate's RGB+mask verbs, defined beside their readers)
from lienzo.data.splits import stratified_split
from lienzo.errors import ConfigError, DataError, RunError, did_you_mean
from lienzo.metrics.classification import target_rank
from lienzo.runs import atomic_write_text

log = logging.getLogger("lienzo")

STOPWORDS = frozenset("""a an and the of in on at to for with by from or as is are was be this that these those it its
into over under near my your our their his her img image images photo picture pic clipart clip art drawing
illustration vector icon stock free hd jpg jpeg png gif copy final new old small large big
imgs photos pictures pics drawings illustrations vectors icons""".split())

# plurals that no suffix rule spells; a class name ending in the key also takes the plural ('snowman' → 'snowmen')
IRREGULAR_PLURALS = {"man": "men", "child": "children", "person": "people", "mouse": "mice", "goose": "geese",
                     "foot": "feet", "tooth": "teeth", "ox": "oxen", "louse": "lice", "die": "dice",
                     "cactus": "cacti", "fungus": "fungi"}

UNSORTED_FILE = "unsorted.csv"  # match's list of the files it left out, and why


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


def plural_forms(word: str) -> set[str]:
    """The plurals simple English spelling allows: 'dog' → dogs; 'fox' → foxes; 'puppy' → puppies;
    'wolf' → wolves; 'knife' → knives; and IRREGULAR_PLURALS ('snowman' → snowmen). A form that is no word
    ('dogses') does no harm: it is only compared with the words of file names."""
    forms = {word + "s"}
    if word.endswith(("s", "x", "z", "ch", "sh", "o")):
        forms.add(word + "es")
    if len(word) > 1 and word[-1] == "y" and word[-2] not in "aeiou":
        forms.add(word[:-1] + "ies")
    if word.endswith("f"):
        forms.add(word[:-1] + "ves")
    if word.endswith("fe"):
        forms.add(word[:-2] + "ves")
    forms.update(word[: len(word) - len(one)] + many for one, many in IRREGULAR_PLURALS.items() if word.endswith(one))
    return forms


def _matches(file_words: list[str], synonym: list[str]) -> bool:
    """The synonym's words appear consecutively, or glued together as a compound ('sun flower' ~ 'sunflower'),
    the last one singular or plural ('black swans', 'sunflowers')."""
    target = "".join(synonym)
    targets = {target} | plural_forms(target)
    longest = max(map(len, targets))
    for i in range(len(file_words)):
        joined = ""
        for j in range(i, len(file_words)):
            joined += file_words[j]
            if joined in targets:
                return True
            if len(joined) >= longest:
                break
    return False


def _classes_named(path: Path, vocab) -> list[int]:
    """Indices of the classes a file's name matches, after the more specific synonym wins ('black swan'
    over 'swan' in 'a-black-swan')."""
    fw = [w for w in words(path.stem) if w not in STOPWORDS]
    hits = {}  # class index → the longest synonym it matched, glued ('blackswan')
    for c, (_, syns) in enumerate(vocab):
        found = ["".join(syn) for syn in syns if _matches(fw, syn)]
        if found:
            hits[c] = max(found, key=len)
    return [c for c, m in hits.items() if not any(m != o and m in o for o in hits.values())]


def place(path: Path, folder: Path, copy: bool = False) -> Path:
    """Link (or copy) `path` into `folder` under its own name, or under name-2.ext, name-3.ext, ... when that
    is taken: files from different folders may share a name, and none may replace another. Returns the target."""
    folder.mkdir(parents=True, exist_ok=True)
    target, n = folder / path.name, 1
    while target.exists() or target.is_symlink():  # is_symlink: a dangling link still takes the name
        n += 1
        target = folder / f"{path.stem}-{n}{path.suffix}"
    if copy:
        shutil.copy2(path, target)
    else:
        os.symlink(path.resolve(), target)
    if n > 1:
        log.info("%s → %s (%s was taken)", path, target, path.name)
    return target


def match(source: str | Path, vocabulary, out: str | Path, *, single_word: bool = False, min_images: int = 1,
          copy: bool = False) -> dict[str, int]:
    """Sort `source`'s images into out/<class>/ by their file names; returns the count per class kept.

    A name that matches several classes is ambiguous and skipped; classes under min_images are dropped.
    Every file left out is listed, with the reason and the classes it named, in out/unsorted.csv."""
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
    unsorted = []  # rows of unsorted.csv
    for path in files:
        classes = _classes_named(path, vocab)
        if len(classes) == 1:
            by_class[vocab[classes[0]][0]].append(path)
        else:  # none, or several: e.g. ImageNet's two 'crane' classes (the bird and the machine)
            reason = "ambiguous" if classes else "unmatched"
            unsorted.append({"path": str(path), "reason": reason, "classes": "; ".join(vocab[c][0] for c in classes)})
    kept = {name: paths for name, paths in sorted(by_class.items()) if len(paths) >= min_images}
    if not kept:
        raise DataError(f"{source}: no file name matched a class of the vocabulary"
                        + (f" with at least {min_images} images" if by_class else ""))
    unsorted += [{"path": str(path), "reason": f"class under {min_images} images", "classes": name}
                 for name, paths in sorted(by_class.items()) if name not in kept for path in paths]
    renamed = 0
    for name, paths in kept.items():
        for path in paths:
            renamed += place(path, out / safe_folder_name(name), copy).name != path.name
    atomic_write_text(out / UNSORTED_FILE, _csv(unsorted, ["path", "reason", "classes"]))
    reasons = Counter(row["reason"] for row in unsorted)
    log.info("matched %d of %d files into %d classes (%d ambiguous, %d unmatched, %d classes under %d images "
             "dropped, %d renamed: name taken); the files left out are listed in %s",
             sum(map(len, kept.values())), len(files), len(kept), reasons["ambiguous"], reasons["unmatched"],
             len(by_class) - len(kept), min_images, renamed, out / UNSORTED_FILE)
    return {name: len(paths) for name, paths in kept.items()}


def safe_folder_name(name: str) -> str:
    return re.sub(r"[/\\\0]", "_", name)


def score(run: str | Path, folder: str | Path, out: str | Path, top_k: int = 5, batch_size: int = 256) -> dict:
    """Predict every image under folder/<class>/ (or a flat folder) with a run's best model, exactly as
    `lienzo evaluate` does (the run's trainer.tta, precision and channels_last); writes `out` (per image:
    path, true class, top-k classes and probabilities) and `out` with `.classes.csv` (per class: count, top1,
    top<k>, cross_entropy). Returns the per-class figures, keyed 'top1' and f'top{top_k}'."""
    from lienzo.evaluate import load_run

    if top_k < 1:
        raise ConfigError(f"top_k must be at least 1, got {top_k}")
    loaded = load_run(run)
    folder = Path(folder)
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"{folder}: no images")
    by_folder = {safe_folder_name(n): n for n in loaded.class_names}  # 'T-shirt/top' lives in folder 'T-shirt_top'
    rows, labelled = [], []  # labelled: (class index, rank of the true class, cross-entropy) per image
    for start in range(0, len(files), batch_size):
        chunk, logits = _score_batch(loaded, files[start : start + batch_size])
        order = logits.argsort(dim=1, descending=True, stable=True)[:, :top_k]  # ties broken as evaluate does
        probs = logits.softmax(1)
        for r, path in enumerate(chunk):
            true = by_folder.get(path.parent.name, path.parent.name) if path.parent != folder else ""
            row = {"path": str(path), "true": true}
            for k, c in enumerate(order[r].tolist()):
                row[f"class{k + 1}"] = loaded.class_names[c]
                row[f"prob{k + 1}"] = round(float(probs[r, c]), 6)
            rows.append(row)
            if true in loaded.class_names:
                target = torch.tensor([loaded.class_names.index(true)])
                labelled.append((int(target), int(target_rank(logits[r : r + 1], target)),
                                 float(F.cross_entropy(logits[r : r + 1], target))))
    summary = _per_class(labelled, loaded.class_names, top_k)
    out = Path(out)
    atomic_write_text(out, _csv(rows))
    atomic_write_text(out.with_suffix(".classes.csv"),
                      _csv([{"class": n, **v} for n, v in sorted(summary.items(), key=lambda kv: -kv[1]["top1"])]))
    return summary


def _score_batch(loaded, paths: list[Path]) -> tuple[list[Path], torch.Tensor]:
    """The readable files among `paths` and their logits (unreadable ones are logged and skipped)."""
    from lienzo.tasks.classify import run_logits

    channels, height, width = loaded.input_shape
    chunk, images = [], []
    for path in paths:
        try:
            images.append(load_image(path, channels, (height, width)))
            chunk.append(path)
        except DataError as err:
            log.warning("skipped %s", err)
    if not images:
        return [], torch.empty(0, len(loaded.class_names))
    # the run's own precision, TTA and layout, as evaluate and predict use them: the same numbers
    return chunk, run_logits(loaded, torch.stack(images))


def _per_class(labelled: list[tuple[int, int, float]], class_names: list[str], top_k: int) -> dict:
    """{class: {count, top1, top<k>, cross_entropy}} over (class index, rank, cross-entropy) triples."""
    grouped = defaultdict(list)
    for c, rank, loss in labelled:
        grouped[class_names[c]].append((rank, loss))
    return {name: {"count": len(items),
                   "top1": sum(rank == 0 for rank, _ in items) / len(items),
                   f"top{top_k}": sum(rank < top_k for rank, _ in items) / len(items),
                   "cross_entropy": sum(loss for _, loss in items) / len(items)}
            for name, items in sorted(grouped.items())}


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
    renamed = 0
    for row in rows:
        name = row["class1"] if by == "predicted" else row["true"]
        if min_prob is not None and float(row["prob1"]) < min_prob:
            continue
        if classes is not None and name not in classes:
            continue
        renamed += place(Path(row["path"]), out / safe_folder_name(name), copy).name != Path(row["path"]).name
        counts[name] += 1
    if not counts:
        raise DataError(f"{path}: no image passed the filter")
    log.info("kept %d of %d images (%d renamed: name taken)", sum(counts.values()), len(rows), renamed)
    return dict(sorted(counts.items()))


def _hdf5_parts(path: Path) -> dict[str | None, ImageArrays]:
    """{group: arrays} of an HDF5 file: its train/val/test groups, or {None: arrays} for a one-split file."""
    import h5py

    if not path.is_file():
        raise DataError(f"{path}: HDF5 file not found")
    try:
        with h5py.File(path, "r") as f:
            grouped = "train" in f and isinstance(f["train"], h5py.Group)
    except OSError as err:
        raise DataError(f"{path}: not a readable HDF5 file ({err})") from None
    if not grouped:
        return {None: load_hdf5(path, "train")}
    return {part: arrays for part in ("train", "val", "test") if (arrays := load_hdf5(path, part)) is not None}


def _image_part(images: torch.Tensor, path: Path) -> torch.Tensor:
    """The picture of N×C×H×W samples: all of grey (1) and RGB (3), without the mask of grey+mask (2) and
    RGB+mask (4)."""
    channels = images.shape[1]
    if channels not in (1, 2, 3, 4):
        raise DataError(f"{path}: images have {channels} channels; expected 1 or 3, or 2 or 4 with a mask last")
    return images[:, : 1 if channels == 2 else min(channels, 3)]


def fit_to_run(images: torch.Tensor, input_shape: tuple[int, int, int]) -> torch.Tensor:
    """uint8 N×C×H×W images as a run's input: channels converted (grey ↔ RGB), resized as `load_image`
    resizes files (area when shrinking, bilinear when enlarging), so arrays score as their files would."""
    channels, height, width = input_shape
    images = to_channels(images, channels)
    if tuple(images.shape[2:]) == (height, width):
        return images
    resample = Image.Resampling.BOX if images.shape[3] > width else Image.Resampling.BILINEAR
    resized = [np.asarray(Image.fromarray(image.permute(1, 2, 0).squeeze(2).numpy()).resize((width, height), resample))
               for image in images]
    return torch.from_numpy(np.stack(resized).reshape(len(images), height, width, channels)).permute(0, 3, 1, 2)


def _filter_by(by: str | None, file_names: list[str], run_names: list[str], path: Path) -> str:
    """'true' (the probability of each sample's own class) or 'predicted' (top-1): by=None picks 'true'
    when the run knows every class of the file, by name, else 'predicted' and says so."""
    if by not in (None, "true", "predicted"):
        raise ConfigError(f"by must be 'true' or 'predicted', got {by!r}")
    unknown = [name for name in file_names if name not in run_names]
    if by == "true" and unknown:
        raise DataError(f"{path}: class '{unknown[0]}' is not one of the run's classes"
                        f"{did_you_mean(unknown[0], run_names)}; filter by the top-1 probability (--by predicted)")
    if by is None and unknown:
        log.info("%s: class '%s' is not one of the run's classes: keeping by the top-1 probability", path, unknown[0])
    return by or ("predicted" if unknown else "true")


def _confidence(loaded, arrays: ImageArrays, by: str, path: Path) -> torch.Tensor:
    """Per sample, the run's probability of its class ('true', matched by name) or of its top-1 ('predicted')."""
    from lienzo.tasks.classify import run_logits

    images = fit_to_run(_image_part(arrays.images, path), loaded.input_shape)
    probs = run_logits(loaded, images).softmax(1)
    if by == "predicted":
        return probs.max(1).values
    column = torch.tensor([loaded.class_names.index(name) for name in arrays.class_names])
    return probs.gather(1, column[arrays.labels].unsqueeze(1)).squeeze(1)


def filter_hdf5(run: str | Path, data: str | Path, out: str | Path, *, min_prob: float = 0.75,
                by: str | None = None) -> dict:
    """Keep the samples of an HDF5 file that a classify run is at least `min_prob` sure of, into `out`:
    same layout and groups, every channel kept (a mask too), labels and class names unchanged.

    The run scores the image part (RGB of RGB+mask), converted and resized to its input as `curate score`
    reads files, with its own precision and test-time augmentation. by='true': the probability of the
    sample's own class, the file's class names matched to the run's by name; by='predicted': the top-1
    probability (the GAN thesis kept ≥ 0.75); None: 'true' when the run knows every class of the file.
    Returns {"counts": {class: kept}, "removed": {class: removed}} over the file's classes."""
    from lienzo.evaluate import load_run

    data, out = Path(data), Path(out)
    if not 0 <= min_prob <= 1:
        raise ConfigError(f"min_prob must be a probability in [0, 1], got {min_prob}")
    if out.suffix not in (".h5", ".hdf5"):
        raise ConfigError(f"{out}: the kept samples go to one HDF5 file; name it with .h5")
    if out.exists():
        raise RunError(f"{out} exists; choose a new output")
    parts = _hdf5_parts(data)
    loaded = load_run(run)
    if loaded.task != "classify":
        raise ConfigError(f"{run} is a {loaded.task} run; curate filter scores with a classify run")
    by = _filter_by(by, next(iter(parts.values())).class_names, loaded.class_names, data)
    kept, removed = Counter(), Counter()
    partial = out.with_name(out.name + ".partial")
    partial.unlink(missing_ok=True)
    try:
        for group, arrays in parts.items():
            keep = _confidence(loaded, arrays, by, data) >= min_prob
            for label, kept_it in zip(arrays.labels.tolist(), keep.tolist()):
                (kept if kept_it else removed)[arrays.class_names[label]] += 1
            write_hdf5(partial, arrays.images[keep].permute(0, 2, 3, 1).numpy(), arrays.labels[keep].numpy(),
                       arrays.class_names, group)
        if not kept:
            raise DataError(f"{data}: no sample passed the filter (the run is never {min_prob:g} sure)")
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)
    names = [n for n in next(iter(parts.values())).class_names if kept[n] or removed[n]]
    log.info("kept %d of %d samples (probability of the %s class >= %g)", sum(kept.values()),
             sum(kept.values()) + sum(removed.values()), "predicted" if by == "predicted" else "own", min_prob)
    return {"counts": {n: kept[n] for n in names}, "removed": {n: removed[n] for n in names}}

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
        from lienzo.data.folders import list_class_folders

        classes = list_class_folders(folder)
        names = [n for n, _ in classes]
        paths = [str(p) for _, files in classes for p in files]
        labels = torch.tensor([i for i, (_, files) in enumerate(classes) for _ in files])
    parts = _split_indices(labels, val, test, seed)
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
        renamed = 0
        for part, index in parts.items():
            for i in index.tolist():
                source = Path(paths[i])
                renamed += place(source, out / part / safe_folder_name(names[int(labels[i])])).name != source.name
            counts[part] = len(index)
        log.info("linked %d images into %s (%d renamed: name taken)", sum(counts.values()), out, renamed)
    return counts


def _split_indices(labels: torch.Tensor, val: float, test: float, seed: int) -> dict[str, torch.Tensor]:
    """{'train', 'val', 'test'}: stratified indices into `labels`; test is held out first, then val from the rest."""
    everything, none = torch.arange(len(labels)), torch.tensor([], dtype=torch.long)
    rest, test_idx = stratified_split(labels, test, seed) if test > 0 else (everything, none)
    train_rel, val_rel = (stratified_split(labels[rest], val / (1 - test), seed + 1) if val > 0
                          else (torch.arange(len(rest)), none))
    return {"train": rest[train_rel], "val": rest[val_rel], "test": test_idx}


def _csv(rows: list[dict], fieldnames: list[str] | None = None) -> str:
    """CSV text with a header (the first row's keys unless named); no rows and no names give ''."""
    buffer = io.StringIO()
    fieldnames = fieldnames or (list(rows[0]) if rows else None)
    if fieldnames:
        writer = csv.DictWriter(buffer, fieldnames=fieldnames)
        writer.writeheader()
        writer.writerows(rows)
    return buffer.getvalue()
