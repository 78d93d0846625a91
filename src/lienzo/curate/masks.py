"""RGB+mask datasets for the GAN pipeline: COCO instance masks, and folders of image/mask pairs filtered
by the thesis's motion-mask heuristics. Both write one HDF5 file in the layout `load_hdf5` reads:
`images` uint8 N×S×S×4 (RGB, then the mask as 0/255), `labels` and `class_names` (coco-masks adds
`image_ids`, the COCO image of each sample), at the top level, or with `test` > 0 in groups `train` and
`test`, so that a GAN's FID compares its samples with images it never trained on and the real-data bound exists.

    from lienzo.curate.masks import coco_masks, mask_pairs
    coco_masks("instances_val2017.json", "val2017/", "coco64.h5", min_area=0.15, categories=["dog", "cat"], test=0.1)
    mask_pairs("frames/", "motion_masks/", "motion64.h5", max_border=0.2, largest_component=True)

Every sample is square, as the GAN needs: the image and its mask are centre-cropped to a square (the
longer side trimmed evenly on both ends), then resized to S×S with area (box) filtering when shrinking
and bilinear when enlarging (as `load_image` resizes). The mask is resized the same way as a fraction and
thresholded at 0.5 (0.5·255 on the 0/255 scale): an output pixel is in the mask when at least half of its
area was. The filters (COCO's min_area, the pairs' foreground and border fractions) measure that square
crop, which is what the network will see: an instance that the crop cuts away does not count as large.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import warnings
from collections import Counter
from pathlib import Path

import h5py
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from tqdm import tqdm

from lienzo.errors import ConfigError, DataError, RunError, did_you_mean
from lienzo.data.hdf5 import write_hdf5
from lienzo.data.images import IMAGE_SUFFIXES, load_image

log = logging.getLogger("lienzo")

HDF5_SUFFIXES = (".h5", ".hdf5")


# ---- one sample ------------------------------------------------------------------------------------------

def centre_square(height: int, width: int) -> tuple[int, int, int]:
    """(top, left, side) of the largest centred square: the longer side loses (excess // 2) at its start."""
    side = min(height, width)
    return (height - side) // 2, (width - side) // 2, side


def _crop(array: np.ndarray) -> np.ndarray:
    top, left, side = centre_square(*array.shape[:2])
    return array[top : top + side, left : left + side]


def _resample(side: int, size: int) -> Image.Resampling:
    # area averaging when shrinking; box filtering cannot enlarge (it would copy pixels), bilinear can
    return Image.Resampling.BOX if side > size else Image.Resampling.BILINEAR


def square_sample(image: np.ndarray, mask: np.ndarray, size: int) -> np.ndarray:
    """An RGB image (H×W×3 uint8) and its boolean mask (H×W) as one size×size×4 uint8 sample: both
    centre-cropped to a square and resized alike; the mask keeps the output pixels it covered at least half of."""
    image, mask = _crop(image), _crop(mask)
    resample = _resample(image.shape[0], size)
    rgb = np.asarray(Image.fromarray(image).resize((size, size), resample))
    covered = np.asarray(Image.fromarray(mask.astype(np.float32)).resize((size, size), resample))
    return np.concatenate([rgb, np.where(covered >= 0.5, 255, 0).astype(np.uint8)[:, :, None]], axis=2)


def _check_options(size: int, **fractions: float) -> None:
    if size < 1:
        raise ConfigError(f"size must be at least 1, got {size}")
    for name, value in fractions.items():
        if not 0 <= value <= 1:
            raise ConfigError(f"{name} must be a fraction in [0, 1], got {value}")


def _check_out(out: Path) -> None:
    if out.suffix not in HDF5_SUFFIXES:
        raise ConfigError(f"{out}: the output is one HDF5 file; name it with .h5")
    if out.exists():
        raise RunError(f"{out} exists; choose a new output")


def write_samples(out: Path, samples: list[np.ndarray], labels: list[int], class_names: list[str],
                  parts: dict[str | None, np.ndarray] | None = None, image_ids: list[int] | None = None) -> None:
    """One HDF5 file of N×S×S×4 samples, written beside `out` and moved into place whole. `parts` ({group:
    sample indices}, see `split_parts`) puts each part in its own group with the same class names, as the
    hdf5 source requires; None writes one split at the top level."""
    images, labels = np.stack(samples), np.asarray(labels)
    partial = out.with_name(out.name + ".partial")
    partial.unlink(missing_ok=True)
    try:
        for group, index in (parts or {None: np.arange(len(labels))}).items():
            write_hdf5(partial, images[index], labels[index], class_names, group)
            if image_ids is not None:
                with h5py.File(partial, "a") as f:
                    (f[group] if group else f).create_dataset("image_ids", data=np.asarray(image_ids, np.int64)[index])
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)


# ---- held-out test split ---------------------------------------------------------------------------------

def _check_test(test: float) -> None:
    if not 0 <= test < 1:
        raise ConfigError(f"test must be a fraction in [0, 1), got {test} (0 writes one split)")


def group_split(labels: np.ndarray, groups: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted indices (train, test): every group (a COCO image) whole on one side, so no photo is on both.

    Groups are visited in a seeded random order and each joins the test side when that brings the test
    side's per-class counts nearer (in L1) to `fraction` of each class's count: the held-out share of
    samples, class by class, is as near `fraction` as whole groups allow. (scikit-learn's group splitters
    either hold out a share of groups, not samples, or k-fold 1/k shares with no other fraction.)

    >>> [index.tolist() for index in group_split(np.zeros(4), np.array([7, 7, 8, 9]), 0.5, seed=0)]
    [[0, 1], [2, 3]]
    """
    group_ids, group_of = np.unique(groups, return_inverse=True)
    classes, class_of = np.unique(labels, return_inverse=True)
    per_group = np.zeros((len(group_ids), len(classes)), np.int64)
    np.add.at(per_group, (group_of, class_of), 1)
    target = fraction * per_group.sum(axis=0)
    held, chosen = np.zeros(len(classes)), np.zeros(len(group_ids), bool)
    for g in np.random.default_rng(seed).permutation(len(group_ids)):
        if np.abs(held + per_group[g] - target).sum() < np.abs(held - target).sum():
            held += per_group[g]
            chosen[g] = True
    test = chosen[group_of]
    return np.flatnonzero(~test), np.flatnonzero(test)


def split_parts(labels: list[int], groups: list, test: float, seed: int, where: Path,
                unit: str) -> dict[str | None, np.ndarray] | None:
    """{'train': indices, 'test': indices} by `group_split`, or None for test=0 (one split). A side left
    empty is a ConfigError naming `where` (the input) and what to change; `unit` names a group ('image')."""
    if test == 0:
        return None
    train, held = group_split(np.asarray(labels), np.asarray(groups), test, seed)
    sizes = f"{len(labels)} samples from {len(set(groups))} {unit}s"
    if not len(held):
        raise ConfigError(f"{where}: --test {test:g} holds out no sample ({sizes}, each {unit} whole on one "
                          "side); raise --test, or --test 0 for one split")
    if not len(train):
        raise ConfigError(f"{where}: --test {test:g} leaves no sample to train on ({sizes}, each {unit} "
                          "whole on one side); lower --test")
    log.info("split: %d samples to train, %d to test (seed %d)", len(train), len(held), seed)
    return {"train": train, "test": held}


def _split_counts(parts: dict[str | None, np.ndarray] | None) -> dict:
    return {} if parts is None else {"split": {part: len(index) for part, index in parts.items()}}


# ---- COCO instances --------------------------------------------------------------------------------------

def read_coco(path: Path):
    """A pycocotools COCO index over a COCO instances JSON, or a DataError saying why the file is not one."""
    from pycocotools.coco import COCO

    if not path.is_file():
        raise DataError(f"{path}: annotations file not found")
    try:
        with open(path, encoding="utf-8") as f:
            dataset = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: not a JSON file ({err.__class__.__name__}: {err})") from None
    missing = [key for key in ("images", "annotations", "categories")
               if not isinstance(dataset, dict) or not isinstance(dataset.get(key), list)]
    if missing:
        raise DataError(f"{path}: not a COCO instances file (no '{missing[0]}' list; COCO's instances_*.json "
                        "have 'images', 'annotations' and 'categories')")
    _check_entries(dataset, path)
    coco = COCO()
    coco.dataset = dataset
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress; --json owns stdout
        coco.createIndex()
    return coco


COCO_FIELDS = {"images": ("id", "file_name", "width", "height"), "categories": ("id", "name"),
               "annotations": ("id", "image_id", "category_id")}


def _check_entries(dataset: dict, path: Path) -> None:
    """Every entry has the fields coco_masks reads, or the file is named with the first one it lacks."""
    for key, fields in COCO_FIELDS.items():
        for n, entry in enumerate(dataset[key]):
            lacking = [field for field in fields if not isinstance(entry, dict) or field not in entry]
            if lacking:
                raise DataError(f"{path}: not a COCO instances file ('{key}' entry {n} has no '{lacking[0]}')")


def _category_ids(coco, categories: list[str] | None, path: Path) -> set[int]:
    """The ids of the named categories (all when None); an unknown name is a DataError with suggestions."""
    by_name = {cat["name"]: cat_id for cat_id, cat in coco.cats.items()}
    if categories is None:
        return set(by_name.values())
    unknown = [name for name in categories if name not in by_name]
    if unknown:
        raise DataError(f"{path}: no category '{unknown[0]}'{did_you_mean(unknown[0], by_name)}")
    return {by_name[name] for name in categories}


def _instance_mask(coco, ann: dict, path: Path) -> np.ndarray:
    """The annotation's mask (polygons, RLE or uncompressed RLE) as a boolean H×W array at its image's size."""
    try:
        with warnings.catch_warnings():
            # pycocotools' decode trips NumPy 2's __array__(copy=...) deprecation on every call: its noise, not ours
            warnings.filterwarnings("ignore", message=r"__array__ implementation", category=DeprecationWarning)
            return coco.annToMask(ann).astype(bool)
    except (KeyError, TypeError, ValueError, IndexError) as err:
        raise DataError(f"{path}: annotation {ann.get('id')}: unreadable segmentation ({err.__class__.__name__}: "
                        f"{err})") from None


def _covers(coco, ann: dict, min_area: float, path: Path) -> bool:
    """Whether the instance covers at least min_area of its image's centre square. RLE's pixel count over
    the whole image bounds it from above, so most small instances are never decoded."""
    from pycocotools import mask as mask_utils

    entry = coco.imgs[ann["image_id"]]
    side = min(entry["height"], entry["width"])
    try:
        whole = float(mask_utils.area(coco.annToRLE(ann)))
    except (KeyError, TypeError, ValueError, IndexError) as err:
        raise DataError(f"{path}: annotation {ann.get('id')}: unreadable segmentation ({err.__class__.__name__}: "
                        f"{err})") from None
    return whole >= min_area * side * side and _crop(_instance_mask(coco, ann, path)).mean() >= min_area


COCO_REASONS = ("crowd", "other_category", "no_mask", "small", "missing_image")


def _coco_candidates(coco, wanted: set[int], min_area: float, path: Path, removed: Counter) -> dict[int, list]:
    """{image id: [annotation, ...]} of the instances to keep, both in id order; counts the others in
    `removed` by reason."""
    kept: dict[int, list] = {}
    for ann_id in sorted(coco.anns):
        ann = coco.anns[ann_id]
        if ann.get("iscrowd", 0):  # a crowd's mask covers many objects: no sample of one object
            removed["crowd"] += 1
        elif ann.get("category_id") not in wanted:
            removed["other_category"] += 1
        elif not ann.get("segmentation"):
            removed["no_mask"] += 1
        elif ann.get("image_id") not in coco.imgs:
            raise DataError(f"{path}: annotation {ann_id} is on image {ann.get('image_id')}, which 'images' "
                            "does not list")
        elif not _covers(coco, ann, min_area, path):
            removed["small"] += 1
        else:
            kept.setdefault(ann["image_id"], []).append(ann)
    return dict(sorted(kept.items()))


def _read_coco_image(folder: Path, entry: dict, strict: bool) -> np.ndarray | None:
    """The image file of a COCO 'images' entry as H×W×3 uint8, or None when it is missing or unreadable
    (an error with strict). Its size must be the one the entry states, or its masks would not fit it."""
    path = folder / entry["file_name"]
    try:
        image = load_image(path, 3).permute(1, 2, 0).numpy()
    except DataError:
        if strict:
            raise DataError(f"{path}: listed in the annotations but missing or unreadable (strict: "
                            "drop --strict to skip such images)") from None
        return None
    if image.shape[:2] != (entry["height"], entry["width"]):
        raise DataError(f"{path}: image is {image.shape[1]}x{image.shape[0]} but the annotations give "
                        f"{entry['width']}x{entry['height']}: its masks would not fit it")
    return image


def coco_masks(annotations: str | Path, images: str | Path, out: str | Path, *, size: int = 64,
               min_area: float = 0.15, categories: list[str] | None = None, strict: bool = False,
               test: float = 0.0, seed: int = 0, progress: bool = True) -> dict:
    """One RGB+mask sample per COCO instance that covers at least `min_area` of its (square-cropped) image.

    Polygons and RLE masks are read with pycocotools; crowd annotations are left out (their mask holds many
    objects). `labels` index `class_names`: the categories that kept a sample, in category-id order
    (`categories` restricts them by name). Image files listed but missing or unreadable are counted and
    skipped with one warning, or with strict=True the first is an error. test > 0 holds out about that
    share of the samples, per category, as a `test` group beside `train`, by whole images (`group_split`,
    seeded): instances of one photo never land on both sides. Never overwrites `out`.
    Returns {"counts": {category: samples}, "removed": {reason: instances}} (reasons: COCO_REASONS), plus
    "split": {"train": samples, "test": samples} when test > 0."""
    annotations, images, out = Path(annotations), Path(images), Path(out)
    _check_options(size, min_area=min_area)
    _check_test(test)
    _check_out(out)
    if not images.is_dir():
        raise DataError(f"{images}: images folder not found")
    coco = read_coco(annotations)
    removed = Counter(dict.fromkeys(COCO_REASONS, 0))
    candidates = _coco_candidates(coco, _category_ids(coco, categories, annotations), min_area, annotations, removed)
    if not candidates:
        raise DataError(f"{annotations}: no instance covers at least {min_area:g} of its image "
                        f"(left out: {_reasons(removed) or 'none'}); lower --min-area")
    samples, category_of, image_of, unread = [], [], [], []
    for image_id, instances in tqdm(candidates.items(), desc="coco-masks", unit="img", disable=not progress,
                                    leave=False):
        image = _read_coco_image(images, coco.imgs[image_id], strict)
        if image is None:
            unread.append(coco.imgs[image_id]["file_name"])
            removed["missing_image"] += len(instances)
            continue
        for ann in instances:
            samples.append(square_sample(image, _instance_mask(coco, ann, annotations), size))
            category_of.append(ann["category_id"])
            image_of.append(image_id)
    _warn_unread(unread, images)
    if not samples:
        raise DataError(f"{images}: none of the {len(candidates)} images with instances to keep could be read")
    used = sorted(set(category_of))
    names = [coco.cats[c]["name"] for c in used]
    label_of = {c: i for i, c in enumerate(used)}
    labels = [label_of[c] for c in category_of]
    parts = split_parts(labels, image_of, test, seed, annotations, "image")
    write_samples(out, samples, labels, names, parts, image_ids=image_of)
    per_category = Counter(category_of)
    log.info("coco-masks: %d samples of %d categories (left out: %s) -> %s", len(samples), len(names),
             _reasons(removed) or "none", out)
    return {"counts": {coco.cats[c]["name"]: per_category[c] for c in used}, "removed": dict(removed),
            **_split_counts(parts)}


def _warn_unread(unread: list[str], folder: Path) -> None:
    if unread:
        names = ", ".join(unread[:5]) + (" ..." if len(unread) > 5 else "")
        warnings.warn(f"{folder}: skipped {len(unread)} listed image(s) missing or unreadable: {names} "
                      "(--strict makes this an error)", stacklevel=3)


def _reasons(removed: Counter) -> str:
    return ", ".join(f"{reason} {n}" for reason, n in removed.items() if n)


# ---- image + mask folders --------------------------------------------------------------------------------

def _by_name(folder: Path) -> dict[str, Path]:
    """{path relative to folder without suffix: file} for the images under folder ('video1/0001' pairs
    video1/0001.jpg with masks/video1/0001.png); two files of one name are a DataError."""
    if not folder.is_dir():
        raise DataError(f"{folder}: folder not found")
    found: dict[str, Path] = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES):
        key = path.relative_to(folder).with_suffix("").as_posix()
        if key in found:
            raise DataError(f"{found[key]} and {path} have one name: which one pairs is ambiguous; keep one")
        found[key] = path
    return found


def read_mask(path: Path) -> np.ndarray:
    """A mask file of any mode as a boolean H×W array: palette images (DAVIS, VOC) by index (not 0 is
    foreground), every other mode by grey level (> 127 is foreground; 16-bit scaled to 8 as load_image does)."""
    try:
        with Image.open(path) as image:
            if image.mode == "P":
                return np.asarray(ImageOps.exif_transpose(image)) != 0
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        raise DataError(f"{path}: not a readable image ({err.__class__.__name__})") from None
    return load_image(path, 1)[0].numpy() > 127


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 8-connected region of a boolean mask (pixels touching at a corner are one region);
    the first in raster order wins a tie."""
    from scipy import ndimage

    regions, count = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
    if count <= 1:
        return mask
    sizes = np.bincount(regions.ravel())[1:]
    return regions == 1 + int(sizes.argmax())


def border_fraction(mask: np.ndarray) -> float:
    """The share of a mask's foreground pixels on the image's 1-pixel frame (0 for an empty mask)."""
    total = int(mask.sum())
    if not total:
        return 0.0
    inside = int(mask[1:-1, 1:-1].sum())
    return (total - inside) / total


def mask_rejection(mask: np.ndarray, min_fg: float, max_fg: float, max_border: float) -> str | None:
    """Why the thesis's motion-mask heuristics drop a mask, or None to keep it: 'small_foreground' or
    'large_foreground' (fraction of the image outside [min_fg, max_fg]), 'on_border' (more than max_border
    of the foreground on the frame: an object the camera cut off, or background motion)."""
    foreground = float(mask.mean())
    if foreground < min_fg:
        return "small_foreground"
    if foreground > max_fg:
        return "large_foreground"
    if border_fraction(mask) > max_border:
        return "on_border"
    return None


def _pair_sample(image_path: Path, mask_path: Path, size: int, keep_largest: bool) -> np.ndarray:
    image = load_image(image_path, 3).permute(1, 2, 0).numpy()
    mask = read_mask(mask_path)
    if mask.shape != image.shape[:2]:
        raise DataError(f"{mask_path}: mask is {mask.shape[1]}x{mask.shape[0]} but its image {image_path} is "
                        f"{image.shape[1]}x{image.shape[0]}; masks must have their image's size")
    mask = _crop(mask)
    if keep_largest:
        mask = largest_component(mask)
    return square_sample(image, mask, size)


def mask_pairs(images: str | Path, masks: str | Path, out: str | Path, *, size: int = 64, min_fg: float = 0.05,
               max_fg: float = 0.6, max_border: float = 0.2, largest_component: bool = False,
               label: str = "object", test: float = 0.0, seed: int = 0, progress: bool = True) -> dict:
    """RGB+mask samples from images/ and masks/ paired by name (same relative path, any suffix), kept when
    the square S×S mask passes the thesis's motion-mask heuristics (see `mask_rejection`); with
    largest_component only the largest connected region of each mask is kept first (at full resolution).

    Every sample is labelled `label`. test > 0 holds out about that share of the kept pairs, chosen per
    file with `seed`, as a `test` group beside `train`. Never overwrites `out`. Returns {"counts": {label:
    kept}, "removed": {reason: pairs}}, the reasons being the filters plus 'unpaired_images' and
    'unpaired_masks', plus "split": {"train": samples, "test": samples} when test > 0."""
    images, masks, out = Path(images), Path(masks), Path(out)
    _check_options(size, min_fg=min_fg, max_fg=max_fg, max_border=max_border)
    _check_test(test)
    if min_fg > max_fg:
        raise ConfigError(f"min_fg {min_fg} is above max_fg {max_fg}: no mask could pass")
    _check_out(out)
    image_files, mask_files = _by_name(images), _by_name(masks)
    paired = sorted(image_files.keys() & mask_files.keys())
    if not paired:
        raise DataError(f"no image in {images} has a mask of the same name in {masks} "
                        f"({len(image_files)} images, {len(mask_files)} masks)")
    removed = Counter({"small_foreground": 0, "large_foreground": 0, "on_border": 0,
                       "unpaired_images": len(image_files) - len(paired),
                       "unpaired_masks": len(mask_files) - len(paired)})
    samples = []
    for key in tqdm(paired, desc="mask-pairs", unit="pair", disable=not progress, leave=False):
        sample = _pair_sample(image_files[key], mask_files[key], size, largest_component)
        reason = mask_rejection(sample[:, :, 3] > 0, min_fg, max_fg, max_border)
        if reason:
            removed[reason] += 1
        else:
            samples.append(sample)
    log.info("mask-pairs: kept %d of %d pairs (left out: %s)", len(samples), len(paired), _reasons(removed) or "none")
    if not samples:
        raise DataError(f"{masks}: no mask passed the filters ({_reasons(removed)}); widen --min-fg/--max-fg "
                        "or --max-border")
    parts = split_parts([0] * len(samples), list(range(len(samples))), test, seed, masks, "file")
    write_samples(out, samples, [0] * len(samples), [label], parts)
    return {"counts": {label: len(samples)}, "removed": dict(removed), **_split_counts(parts)}
