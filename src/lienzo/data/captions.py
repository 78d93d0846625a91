"""Caption files (Karpathy's split json, Flickr8k, COCO captions, CSV/JSONL), Karpathy's tokenisation and a vocabulary.

Nothing is downloaded: every reader takes a file the user has, checks it, and raises `DataError` naming the file,
the line or entry and what is wrong.

    >>> data = read_captions("dataset_flickr8k.json")                       # doctest: +SKIP
    >>> data.counts()                                                         # doctest: +SKIP
    {'train': 6000, 'val': 1000, 'test': 1000}
    >>> vocab = Vocabulary.build([t for im in data.split("train") for t in im.tokens], min_count=5)  # doctest: +SKIP
    >>> ids, lengths, truncated = encode_captions(vocab, [["a", "dog", "runs"]], max_length=16)   # doctest: +SKIP
"""

from __future__ import annotations

import csv
import json
import logging
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath


from lienzo.errors import ConfigError, DataError, RunError, did_you_mean
from lienzo.runs import atomic_write_text
from lienzo.data.splits import holdout_splits
from lienzo.data.vocabulary import tokenize

log = logging.getLogger("lienzo")

SPLITS = ("train", "val", "test")
FORMATS = ("auto", "karpathy", "flickr8k", "coco", "csv", "jsonl")
RESTVAL_CHOICES = ("train", "val", "test", "drop")
FLICKR8K_SPLIT_FILES = {"train": "Flickr_8k.trainImages.txt", "val": "Flickr_8k.devImages.txt",
                        "test": "Flickr_8k.testImages.txt"}


@dataclass
class CaptionImage:
    """One image and its captions; `file` is relative to the images root the caller knows."""

    file: str
    split: str
    captions: list[str]
    tokens: list[list[str]]
    image_id: str


@dataclass
class CaptionDataset:
    """Every image a caption file describes, with its split; `dropped` counts images the reader left out."""

    images: list[CaptionImage]
    source: str
    format: str
    dropped: int = 0

    def split(self, name: str) -> list[CaptionImage]:
        if name not in SPLITS:
            raise ConfigError(f"unknown split {name!r}: choose one of {', '.join(SPLITS)}")
        return [image for image in self.images if image.split == name]

    def counts(self) -> dict[str, int]:
        """Images per split, every split named even when empty."""
        counts = Counter(image.split for image in self.images)
        return {name: counts.get(name, 0) for name in SPLITS}


# ---------------------------------------------------------------------------------------------- file helpers

def _read_text(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8-sig").splitlines()
    except FileNotFoundError:
        raise DataError(f"{path}: not found") from None
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    except OSError as err:
        raise DataError(f"{path}: cannot read ({err.strerror or err})") from None


def _read_json(path: Path):
    try:
        return json.loads("\n".join(_read_text(path)))
    except json.JSONDecodeError as err:
        raise DataError(f"{path}: not valid JSON ({err.msg}, line {err.lineno})") from None


def _entry(path: Path, where: str, item, key: str, kind: type | tuple[type, ...]):
    """item[key], checked to be a `kind`: one line naming the entry when it is missing or of another type."""
    if not isinstance(item, dict) or key not in item:
        raise DataError(f"{path}: {where} has no {key!r}")
    value = item[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise DataError(f"{path}: {where} {key!r} is {type(value).__name__}, not {_kind_name(kind)}")
    return value


def _kind_name(kind) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(k.__name__ for k in kinds)


def _image_id_from_file(file: str) -> str:
    """The file without its suffix: unique when the files are, and stable across readers and the writer."""
    path = PurePosixPath(file)
    return str(path.with_suffix("")) if path.suffix else str(path)


def _caption_image(file: str, split: str, raws: list[str], image_id: str) -> CaptionImage:
    return CaptionImage(file=file, split=split, captions=raws, tokens=[tokenize(r) for r in raws], image_id=image_id)


def _dropped(dataset: CaptionDataset, reason: str) -> CaptionDataset:
    if dataset.dropped:
        log.warning("%s: dropped %d image(s) %s", dataset.source, dataset.dropped, reason)
    return dataset


def _check_restval(restval: str) -> None:
    if restval not in RESTVAL_CHOICES:
        raise ConfigError(f"restval={restval!r}: choose one of {', '.join(RESTVAL_CHOICES)}"
                          f"{did_you_mean(restval, RESTVAL_CHOICES)}")


def _resolve_split(path: Path, where: str, split, restval: str) -> str | None:
    """A split name from a file mapped to train/val/test, or None for restval images the caller drops."""
    if split == "restval":
        return None if restval == "drop" else restval
    if split not in SPLITS:
        raise DataError(f"{path}: {where} has split {split!r}, not one of train, val, test, restval")
    return split


# ---------------------------------------------------------------------------------------------- Karpathy's json

def _karpathy_sentences(path: Path, where: str, image: dict) -> tuple[list[str], list[list[str]]]:
    sentences = _entry(path, where, image, "sentences", list)
    if not sentences:
        raise DataError(f"{path}: {where} has an empty 'sentences' list")
    raws, tokens = [], []
    for n, sentence in enumerate(sentences):
        here = f"{where} sentence {n}"
        if isinstance(sentence, dict) and "tokens" in sentence:
            words = _entry(path, here, sentence, "tokens", list)
            if not all(isinstance(w, str) for w in words):
                raise DataError(f"{path}: {here} 'tokens' holds something other than strings")
            raw = sentence.get("raw", " ".join(words))
        else:
            raw = _entry(path, here, sentence, "raw", str)
            words = tokenize(raw)
        raws.append(str(raw))
        tokens.append(list(words))
    return raws, tokens


def _karpathy_images(path: Path, data) -> list:
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise DataError(f"{path}: not a Karpathy split file (no 'images' list with 'sentences')")
    return data["images"]


def _read_karpathy(path: Path, data, restval: str) -> CaptionDataset:
    images, dropped = [], 0
    for n, image in enumerate(_karpathy_images(path, data)):
        where = f"images[{n}]"
        name = _entry(path, where, image, "filename", str)
        split = _resolve_split(path, where, _entry(path, where, image, "split", str), restval)
        raws, tokens = _karpathy_sentences(path, where, image)
        if split is None:
            dropped += 1
            continue
        folder = image.get("filepath")
        file = f"{folder}/{name}" if folder else name
        image_id = str(image["cocoid"]) if "cocoid" in image else _image_id_from_file(file)
        images.append(CaptionImage(file=file, split=split, captions=raws, tokens=tokens, image_id=image_id))
    return _dropped(CaptionDataset(images, str(path), "karpathy", dropped), "of split restval (restval=drop)")


# ---------------------------------------------------------------------------------------------- Flickr8k

_FLICKR_LINE = re.compile(r"^(?P<file>[^\t#]+)#(?P<index>\d+)\t(?P<caption>.*)$")


def _read_flickr_captions(path: Path) -> dict[str, dict[int, str]]:
    """{file: {#N: caption}} in the order of the file; a malformed or repeated line is an error naming it."""
    captions: dict[str, dict[int, str]] = {}
    for n, line in enumerate(_read_text(path), 1):
        if not line.strip():
            continue
        match = _FLICKR_LINE.match(line.rstrip("\r"))
        if not match:
            raise DataError(f"{path} line {n}: expected 'image.jpg#N<TAB>caption', got {line[:60]!r}")
        file, index, caption = match["file"].strip(), int(match["index"]), match["caption"].strip()
        if not caption:
            raise DataError(f"{path} line {n}: empty caption for {file}#{index}")
        if index in captions.setdefault(file, {}):
            raise DataError(f"{path} line {n}: {file}#{index} appears twice")
        captions[file][index] = caption
    if not captions:
        raise DataError(f"{path}: no captions")
    return captions


def _read_split_lists(folder: Path, captions: dict) -> dict[str, str]:
    """{file: split} from Flickr8k's three split files; every file named must have captions."""
    splits: dict[str, str] = {}
    for split, name in FLICKR8K_SPLIT_FILES.items():
        list_path = folder / name
        if not list_path.is_file():
            raise DataError(f"{list_path}: missing (Flickr8k's split lists {', '.join(FLICKR8K_SPLIT_FILES.values())} "
                            f"go next to the token file, or pass split_file=FOLDER)")
        for n, line in enumerate(_read_text(list_path), 1):
            file = line.strip()
            if not file:
                continue
            if file not in captions:
                raise DataError(f"{list_path} line {n}: {file} has no captions in the token file")
            if splits.get(file, split) != split:
                raise DataError(f"{list_path} line {n}: {file} is also in the {splits[file]} list")
            splits[file] = split
    return splits


def _read_flickr8k(path: Path, split_file: str | None) -> CaptionDataset:
    captions = _read_flickr_captions(path)
    folder = Path(split_file) if split_file else path.parent
    splits = _read_split_lists(folder.parent if folder.is_file() else folder, captions)
    images = [_caption_image(file, splits[file], [by_index[i] for i in sorted(by_index)], _image_id_from_file(file))
              for file, by_index in captions.items() if file in splits]
    dataset = CaptionDataset(images, str(path), "flickr8k", dropped=len(captions) - len(images))
    return _dropped(dataset, "listed in no split file")


# ---------------------------------------------------------------------------------------------- COCO captions

_COCO_SPLIT = re.compile(r"(train|val|test)20\d\d")


def _coco_images(path: Path, data) -> tuple[dict[int, str], dict[int, list[str]]]:
    """({id: file_name}, {id: [captions]}) from a COCO captions json, checked entry by entry."""
    if not (isinstance(data, dict) and isinstance(data.get("images"), list) and isinstance(data.get("annotations"), list)):
        raise DataError(f"{path}: not a COCO captions file (needs 'images' and 'annotations' lists)")
    files = {}
    for n, image in enumerate(data["images"]):
        files[_entry(path, f"images[{n}]", image, "id", int)] = _entry(path, f"images[{n}]", image, "file_name", str)
    captions: dict[int, list[str]] = {}
    for n, note in enumerate(data["annotations"]):
        image_id = _entry(path, f"annotations[{n}]", note, "image_id", int)
        caption = _entry(path, f"annotations[{n}]", note, "caption", str).strip()
        if image_id not in files:
            raise DataError(f"{path}: annotations[{n}] names image_id {image_id}, which is not in 'images'")
        if not caption:
            raise DataError(f"{path}: annotations[{n}] has an empty caption")
        captions.setdefault(image_id, []).append(caption)
    return files, captions


def _coco_default_split(path: Path, file_name: str) -> str:
    """The split a COCO name says: the image's (COCO_val2014_...), else the annotation file's, else train."""
    match = _COCO_SPLIT.search(file_name) or _COCO_SPLIT.search(path.name)
    return match[1] if match else "train"


def _coco_split_table(split_path: Path, restval: str) -> tuple[dict, dict]:
    """({cocoid: split}, {file name: split}) from a Karpathy json or a text file of '<file_name> <split>' lines."""
    by_id: dict[str, str | None] = {}
    by_name: dict[str, str | None] = {}
    if split_path.suffix == ".json":
        for n, image in enumerate(_karpathy_images(split_path, _read_json(split_path))):
            where = f"images[{n}]"
            split = _resolve_split(split_path, where, _entry(split_path, where, image, "split", str), restval)
            by_name[_entry(split_path, where, image, "filename", str)] = split
            if "cocoid" in image:
                by_id[str(image["cocoid"])] = split
        return by_id, by_name
    for n, line in enumerate(_read_text(split_path), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2:
            raise DataError(f"{split_path} line {n}: expected '<file_name> <split>', got {line[:60]!r}")
        by_name[PurePosixPath(parts[0]).name] = _resolve_split(split_path, f"line {n}", parts[1], restval)
    return by_id, by_name


def _read_coco(path: Path, data, split_file: str | None, restval: str) -> CaptionDataset:
    files, captions = _coco_images(path, data)
    table = _coco_split_table(Path(split_file), restval) if split_file else None
    images, dropped = [], 0
    for image_id, file_name in files.items():
        if image_id not in captions:
            dropped += 1
            continue
        if table is None:
            split = _coco_default_split(path, file_name)
        else:
            by_id, by_name = table
            key = PurePosixPath(file_name).name
            split = by_id[str(image_id)] if str(image_id) in by_id else by_name.get(key)
        if split is None:
            dropped += 1
            continue
        images.append(_caption_image(file_name, split, captions[image_id], str(image_id)))
    return _dropped(CaptionDataset(images, str(path), "coco", dropped), "without captions or not in the split file")


# ---------------------------------------------------------------------------------------------- CSV / JSONL

def _csv_rows(path: Path) -> list[tuple[int, dict]]:
    lines = _read_text(path)
    reader = csv.DictReader(lines)
    columns = [c.strip() for c in reader.fieldnames or []]
    missing = [c for c in ("image", "caption") if c not in columns]
    if missing:
        raise DataError(f"{path}: no {' or '.join(missing)} column (columns are image, caption and optionally split; "
                        f"found {', '.join(columns) or 'none'})")
    reader.fieldnames = columns
    return [(reader.line_num, row) for row in reader]


def _jsonl_rows(path: Path) -> list[tuple[int, dict]]:
    rows = []
    for n, line in enumerate(_read_text(path), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"{path} line {n}: not valid JSON ({err.msg})") from None
        if not isinstance(row, dict):
            raise DataError(f"{path} line {n}: expected an object with 'image' and 'caption'")
        rows.append((n, row))
    return rows


def _group_rows(path: Path, rows: list[tuple[int, dict]]) -> tuple[dict[str, list[str]], dict[str, str]]:
    """({image: [captions]}, {image: split}) in the order images first appear; splits only when every row has one."""
    captions: dict[str, list[str]] = {}
    splits: dict[str, str] = {}
    with_split = [("split" in row and row["split"] not in (None, "")) for _, row in rows]
    if any(with_split) and not all(with_split):
        n = rows[with_split.index(False)][0]
        raise DataError(f"{path} line {n}: no split, while other rows have one (give every row a split or none)")
    for n, row in rows:
        image, caption = row.get("image"), row.get("caption")
        if not isinstance(image, str) or not image.strip():
            raise DataError(f"{path} line {n}: no image")
        if not isinstance(caption, str) or not caption.strip():
            raise DataError(f"{path} line {n}: no caption for {image}")
        image = image.strip()
        captions.setdefault(image, []).append(caption.strip())
        if any(with_split):
            split = str(row["split"]).strip()
            if split not in SPLITS:
                raise DataError(f"{path} line {n}: split {split!r} is not one of {', '.join(SPLITS)}")
            if splits.setdefault(image, split) != split:
                raise DataError(f"{path} line {n}: {image} is in split {split}, "
                                f"but an earlier row puts it in {splits[image]}")
    if not captions:
        raise DataError(f"{path}: no captions")
    return captions, splits


def _read_table(path: Path, format: str, val_fraction: float, test_fraction: float, seed: int) -> CaptionDataset:
    rows = _csv_rows(path) if format == "csv" else _jsonl_rows(path)
    captions, splits = _group_rows(path, rows)
    if not splits:
        splits = holdout_splits(captions, val_fraction, test_fraction, seed)
    images = [_caption_image(file, splits[file], raws, _image_id_from_file(file)) for file, raws in captions.items()]
    return CaptionDataset(images, str(path), format)


# ---------------------------------------------------------------------------------------------- entry point

def _json_format(path: Path, data) -> str:
    if isinstance(data, dict) and "annotations" in data:
        return "coco"
    images = data.get("images") if isinstance(data, dict) else None
    if isinstance(images, list) and (not images or (isinstance(images[0], dict) and "sentences" in images[0])):
        return "karpathy"
    raise DataError(f"{path}: neither Karpathy's split file (images[].sentences) nor COCO captions "
                    f"(images + annotations); pass format= if it is another kind")


def detect_format(path: str | Path) -> str:
    """The format of a caption file from its suffix, or for .json from its keys (Karpathy's or COCO's)."""
    path = Path(path)
    if path.suffix in (".csv", ".jsonl"):
        return path.suffix[1:]
    if path.suffix == ".txt":
        return "flickr8k"
    if path.suffix == ".json":
        return _json_format(path, _read_json(path))
    raise DataError(f"{path}: cannot tell the caption format from the name; pass format= (one of {', '.join(FORMATS[1:])})")


def read_captions(path: str | Path, format: str = "auto", *, split_file: str | None = None, restval: str = "train",
                  val_fraction: float = 0.05, test_fraction: float = 0.05, seed: int = 0) -> CaptionDataset:
    """Read a caption file into images with captions, tokens and splits.

    - karpathy: `dataset_{flickr8k,flickr30k,coco}.json`; `restval` images go to the split `restval` names
      (train, val, test) or are dropped ("drop").
    - flickr8k: `Flickr8k.token.txt` (or `.lemma.token.txt`) with Flickr_8k.{train,dev,test}Images.txt next to it or
      in the folder `split_file` (or the folder of the list it names); dev is val; images in no list are dropped
      (counted in `dropped`, logged).
    - coco: `captions_*.json`; splits from `split_file` (Karpathy's json, or lines '<file_name> <split>'; images it
      does not name are dropped). Without one every image takes the split its file name says (COCO_val2014_... → val,
      train2014 → train, test2014 → test), else the annotation file's name, else train.
    - csv / jsonl: `image,caption[,split]` rows, several per image; without splits a seeded hold-out by file name.
    """
    path = Path(path)
    _check_restval(restval)
    if format not in FORMATS:
        raise ConfigError(f"unknown caption format {format!r}: choose one of {', '.join(FORMATS)}"
                          f"{did_you_mean(format, FORMATS)}")
    if not path.is_file():
        raise DataError(f"{path}: not found" if not path.exists() else f"{path}: not a file (give the caption file)")
    data = _read_json(path) if format in ("karpathy", "coco") or (format == "auto" and path.suffix == ".json") else None
    if format == "auto":
        format = _json_format(path, data) if data is not None else detect_format(path)
    if format == "karpathy":
        dataset = _read_karpathy(path, data, restval)
    elif format == "flickr8k":
        dataset = _read_flickr8k(path, split_file)
    elif format == "coco":
        dataset = _read_coco(path, data, split_file, restval)
    else:
        dataset = _read_table(path, format, val_fraction, test_fraction, seed)
    if not dataset.images:
        raise DataError(f"{path}: no captioned images left after splitting (dropped {dataset.dropped})")
    return dataset


# ---------------------------------------------------------------------------------------------- writer

def _karpathy_entry(index: int, image: CaptionImage, first_sentence: int) -> dict:
    if len(image.captions) != len(image.tokens):
        raise ValueError(f"{image.file}: {len(image.captions)} captions but {len(image.tokens)} token lists")
    file = PurePosixPath(image.file)
    sentids = list(range(first_sentence, first_sentence + len(image.captions)))
    entry = {"filename": file.name, "imgid": index, "split": image.split, "sentids": sentids,
             "sentences": [{"tokens": list(tokens), "raw": raw, "imgid": index, "sentid": sentid}
                           for raw, tokens, sentid in zip(image.captions, image.tokens, sentids)]}
    if str(file.parent) != ".":
        entry["filepath"] = str(file.parent)
    if image.image_id != _image_id_from_file(image.file):
        if not image.image_id.isdigit() or str(int(image.image_id)) != image.image_id:
            raise ValueError(f"{image.file}: image_id {image.image_id!r} is neither the file without suffix nor a number")
        entry["cocoid"] = int(image.image_id)
    return entry


def write_karpathy(path: str | Path, images: Sequence[CaptionImage], dataset_name: str, *, overwrite: bool = False) -> Path:
    """Write images in Karpathy's split-file format (atomically), so `read_captions` reads them back unchanged."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise RunError(f"{path} exists; choose a new output")
    entries, sentence = [], 0
    for index, image in enumerate(images):
        entries.append(_karpathy_entry(index, image, sentence))
        sentence += len(image.captions)
    atomic_write_text(path, json.dumps({"images": entries, "dataset": dataset_name}) + "\n")
    return path


__all__ = ["CaptionDataset", "CaptionImage", "detect_format", "read_captions", "write_karpathy"]
