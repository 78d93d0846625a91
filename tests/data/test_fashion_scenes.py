"""The synthetic fashion-scenes caption dataset: Karpathy's format, captions parsed back and checked against the
items, boxes and pixels, disjoint Fashion-MNIST items, byte-identical rebuilds, refused outputs."""

import itertools
import json
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lienzo.tasks.caption.scenes import (
    JSON_NAME,
    build_fashion_scenes,
    make_fashion_scenes,
    plan_scenes,
    relations,
    tokenize,
)
from lienzo.data.idx import FASHION_MNIST_CLASSES, load_idx_split
from lienzo.errors import ConfigError, DataError, RunError
from tests.helpers import FASHION_MNIST

needs_fashion = pytest.mark.skipif(not (FASHION_MNIST / "train-images-idx3-ubyte.gz").is_file(),
                                   reason="Fashion-MNIST absent: install Debian's dataset-fashion-mnist")
COUNTS = {"train": 40, "val": 10, "test": 10}

# The words written by hand here, not imported, so that the captions are checked against an independent reading.
NOUNS = {  # label: (singular phrases, plural phrases)
    0: (["top", "tee", "tshirt"], ["tops", "tees", "tshirts"]),
    1: (["pair of trousers", "pair of pants"], ["pairs of trousers", "pairs of pants"]),
    2: (["pullover", "sweater", "jumper"], ["pullovers", "sweaters", "jumpers"]),
    3: (["dress"], ["dresses"]),
    4: (["coat", "jacket"], ["coats", "jackets"]),
    5: (["sandal"], ["sandals"]),
    6: (["shirt"], ["shirts"]),
    7: (["sneaker", "trainer"], ["sneakers", "trainers"]),
    8: (["bag", "handbag", "purse"], ["bags", "handbags", "purses"]),
    9: (["ankle boot", "boot"], ["ankle boots", "boots"]),
}
ANY = -1  # "items", "things", "objects": any class
PHRASES = sorted([(tuple(p.split()), label) for label, forms in NOUNS.items() for p in forms[0] + forms[1]]
                 + [((w,), ANY) for w in ("item", "items", "thing", "things", "object", "objects")],
                 key=lambda phrase: -len(phrase[0]))
COLOURS = {"red", "green", "blue", "yellow", "purple", "orange"}
EXACT = {"one": 1, "single": 1, "two": 2, "three": 3}
RELATION_WORDS = {"to the left of": "left", "left of": "left", "to the right of": "right", "right of": "right",
                  "above": "above", "over": "above", "below": "below", "under": "below", "beneath": "below"}


def _mentions(tokens):
    """[(start, end, label or ANY, colour or None, exact count or None)] read left to right."""
    found, i = [], 0
    while i < len(tokens):
        match = next(((words, label) for words, label in PHRASES if tuple(tokens[i:i + len(words)]) == words), None)
        if match is None:
            i += 1
            continue
        start, colour, exact = i, None, None
        if start and tokens[start - 1] in COLOURS:
            start, colour = start - 1, tokens[start - 1]
        if start and tokens[start - 1] in EXACT:
            start, exact = start - 1, EXACT[tokens[start - 1]]
        if start and tokens[start - 1] in ("a", "an"):
            start -= 1
        found.append((start, i + len(match[0]), match[1], colour, exact))
        i += len(match[0])
    return found


def _matching(items, label, colour):
    return [k for k, item in enumerate(items)
            if label in (ANY, item["label"]) and colour in (None, item["colour"])]


def _holds(rel, a, b):
    """Box a is clearly (≥ 2 px) `rel` of box b; boxes are x0, y0, x1, y1 with x1/y1 exclusive."""
    return {"left": a[2] + 2 <= b[0], "right": b[2] + 2 <= a[0],
            "above": a[3] + 2 <= b[1], "below": b[3] + 2 <= a[1]}[rel]


def check_caption(tokens, record):
    """Assert that every claim of the caption is true of the record's items and background; returns the
    relations it states."""
    items = record["items"]
    mentions = _mentions(tokens)
    assert mentions, tokens
    used = set()
    for start, end, label, colour, exact in mentions:
        used.update(range(start, end))
        matching = _matching(items, label, colour)
        if exact is None:
            assert label != ANY and matching, (tokens, items)  # "a red bag": there is one
        else:
            assert len(matching) == exact, (tokens, items)  # "two red bags", "three items": exactly
    qualifiers = {i for i, t in enumerate(tokens) if t in COLOURS | set(EXACT) - {"one"}}
    assert qualifiers <= used, tokens  # no colour or count outside a mention
    stated = []
    for (_, end, la, ca, _), (start, _, lb, cb, _) in itertools.pairwise(mentions):
        between = " ".join(t for t in tokens[end:start] if t != "is")
        if between in RELATION_WORDS:
            rel = RELATION_WORDS[between]
            assert any(_holds(rel, items[a]["box"], items[b]["box"]) for a in _matching(items, la, ca)
                       for b in _matching(items, lb, cb) if a != b), (tokens, items)
            stated.append(rel)
    assert len(stated) == sum(t in {"left", "right", "above", "over", "below", "under", "beneath"} for t in tokens)
    if "background" in tokens:
        assert tokens[tokens.index("background") - 1] == record["background"], (tokens, record["background"])
    return stated


def check_dataset(images):
    """Every caption of every record checked; returns the relations stated over all."""
    stated = Counter()
    for record in images:
        assert len(record["sentences"]) == 5
        for sentence in record["sentences"]:
            assert sentence["tokens"] == tokenize(sentence["raw"]) and len(sentence["tokens"]) <= 16
            stated.update(check_caption(sentence["tokens"], record))
    return stated


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    if not (FASHION_MNIST / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip("Fashion-MNIST absent: install Debian's dataset-fashion-mnist")
    out = tmp_path_factory.mktemp("scenes") / "fs"
    path = build_fashion_scenes(out, **COUNTS, seed=0, progress=False)
    return out, json.loads(path.read_text())


def test_tokens_and_relations_by_hand():
    assert tokenize("Two items: a red bag, and a blue coat.") == ["two", "items", "a", "red", "bag", "and", "a",
                                                                   "blue", "coat"]
    assert relations((0, 0, 10, 10), (12, 0, 20, 10)) == ["left"]  # 2 px apart: stated
    assert relations((12, 0, 20, 10), (0, 0, 10, 10)) == ["right"]
    assert relations((0, 0, 10, 10), (11, 11, 20, 20)) == []  # 1 px apart either way: not clearly
    assert relations((0, 0, 10, 10), (20, 30, 30, 40)) == ["left", "above"]


def test_parser_catches_false_captions():
    """The checker itself fails on false captions (so the dataset checks can fail)."""
    record = {"background": "dark", "items": [{"label": 8, "colour": "red", "box": [2, 2, 20, 20]},
                                              {"label": 4, "colour": "blue", "box": [30, 2, 50, 20]}]}
    assert check_caption(tokenize("A red purse to the left of a blue jacket."), record) == ["left"]
    assert check_caption(tokenize("Two items: a red bag and a blue coat on a dark background."), record) == []
    for false in ("A blue bag.", "A red bag is right of a blue coat.", "Three items.", "Two red items.",
                  "A red dress.", "A bag on a light background.", "A red bag above a coat."):
        with pytest.raises(AssertionError):
            check_caption(tokenize(false), record)


@needs_fashion
def test_karpathy_format_splits_and_counts(built):
    out, data = built
    assert data["dataset"] == "fashionscenes"
    images = data["images"]
    assert Counter(r["split"] for r in images) == COUNTS
    assert [r["imgid"] for r in images] == list(range(60))
    assert [s["sentid"] for r in images for s in r["sentences"]] == list(range(300))
    for record in images:
        assert record["filepath"] == "images" and record["filename"].startswith(record["split"] + "_")
        assert all(s["imgid"] == record["imgid"] for s in record["sentences"])
        assert record["sentids"] == [s["sentid"] for s in record["sentences"]]
        assert 1 <= len(record["items"]) <= 3 and len({s["raw"] for s in record["sentences"]}) == 5
        image = Image.open(out / record["filepath"] / record["filename"])
        assert image.mode == "RGB" and image.size == (64, 64)
    assert sorted(p.name for p in (out / "images").iterdir()) == sorted(r["filename"] for r in images)
    assert {len(r["items"]) for r in images} == {1, 2, 3}


@needs_fashion
def test_captions_are_true_of_the_items(built):
    stated = check_dataset(built[1]["images"])
    assert stated["left"] + stated["right"] > 10 and stated["above"] + stated["below"] > 10, stated


@needs_fashion
def test_items_are_fashion_mnist_rows_used_once(built):
    images = built[1]["images"]
    labels = {split: load_idx_split(FASHION_MNIST, split, FASHION_MNIST_CLASSES, "fashion_mnist").labels.numpy()
              for split in ("train", "test")}
    rows = {split: [item["fashion_index"] for r in images if r["split"] == split for item in r["items"]]
            for split in COUNTS}
    for used in rows.values():
        assert len(used) == len(set(used))
    assert not set(rows["val"]) & set(rows["test"])
    for record in images:
        source = labels["train" if record["split"] == "train" else "test"]
        for item in record["items"]:
            assert source[item["fashion_index"]] == item["label"]
            assert item["class"] == FASHION_MNIST_CLASSES[item["label"]].lower()


# which channels dominate each tint: (high, low) pairs that must hold on every item pixel
DOMINANT = {"red": [(0, 1), (0, 2)], "green": [(1, 0), (1, 2)], "blue": [(2, 0), (2, 1)],
            "yellow": [(0, 2), (1, 2)], "purple": [(0, 1), (2, 1)], "orange": [(0, 1), (0, 2), (1, 2)]}


@needs_fashion
def test_pixels_show_the_tints_inside_tight_boxes(built):
    out, data = built
    for record in data["images"]:
        rgb = np.asarray(Image.open(out / "images" / record["filename"])).astype(int)
        coloured = rgb.max(2) - rgb.min(2) > 20  # the background is grey: only items have chroma
        inside = np.zeros_like(coloured)
        for item in record["items"]:
            x0, y0, x1, y1 = item["box"]
            inside[y0:y1, x0:x1] = True
            region = coloured[y0:y1, x0:x1]
            # the box is tight: its item's pixels touch all four sides
            assert region[0].any() and region[-1].any() and region[:, 0].any() and region[:, -1].any()
            pixels = rgb[y0:y1, x0:x1][region]
            assert len(pixels) >= 20
            for high, low in DOMINANT[item["colour"]]:
                assert (pixels[:, high] > pixels[:, low] + 15).all(), (item, record["filename"])
        assert not (coloured & ~inside).any()  # no coloured pixel outside the items' boxes
        grey = rgb[~inside].mean()
        assert (grey < 100) if record["background"] == "dark" else (grey > 170)


@needs_fashion
def test_in_memory_scenes_equal_the_files(built):
    out, data = built
    images, scenes, captions = make_fashion_scenes("val", COUNTS["val"], seed=0)
    records = [r for r in data["images"] if r["split"] == "val"]
    for image, scene, caps, record in zip(images, scenes, captions, records):
        assert np.array_equal(image.permute(1, 2, 0).numpy(), np.asarray(Image.open(out / "images" /
                                                                                   record["filename"])))
        assert [list(item.box) for item in scene.items] == [item["box"] for item in record["items"]]
        assert caps == [s["raw"] for s in record["sentences"]]


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@needs_fashion
def test_rebuild_is_byte_identical_and_another_seed_differs(built, tmp_path):
    out, _ = built
    again = build_fashion_scenes(tmp_path / "again", **COUNTS, seed=0, progress=False).parent
    assert _files(again) == _files(out)
    other = build_fashion_scenes(tmp_path / "other", **COUNTS, seed=1, progress=False).parent
    first, second = _files(out), _files(other)
    assert first.keys() == second.keys()
    assert first[JSON_NAME] != second[JSON_NAME]
    assert sum(first[name] != second[name] for name in first) >= 55  # nearly every image differs


def test_existing_output_is_refused(tmp_path):
    out = tmp_path / "fs"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(RunError, match="choose another folder"):
        build_fashion_scenes(out, train=2, val=1, test=1, progress=False)
    assert [p.name for p in out.iterdir()] == ["keep.txt"] and (out / "keep.txt").read_text() == "mine"


def test_missing_fashion_mnist_names_the_package_and_leaves_nothing(tmp_path):
    with pytest.raises(DataError, match="dataset-fashion-mnist"):
        build_fashion_scenes(tmp_path / "fs", train=2, val=1, test=1, fashion_root=tmp_path / "nowhere",
                             progress=False)
    assert list(tmp_path.iterdir()) == []  # neither the output nor its partial folder


def test_bad_counts_and_used_up_classes():
    with pytest.raises(ConfigError, match="32 pixels"):
        build_fashion_scenes("unused", train=2, size=16, progress=False)
    with pytest.raises(ConfigError, match="val=-1"):
        build_fashion_scenes("unused", val=-1, progress=False)
    labels = np.repeat(np.arange(10), 3)  # three rows per class: 30 items in all, each usable once
    (scene,) = plan_scenes(labels, "train", 1)  # at most 3 items: always fits
    assert [labels[item.fashion_index] for item in scene.items] == [item.label for item in scene.items]
    with pytest.raises(ConfigError, match="ask for fewer train images"):
        plan_scenes(labels, "train", 40)


@pytest.mark.slow
@needs_fashion
def test_full_size_build_is_fast_small_vocabulary_and_true(tmp_path):
    start = time.process_time()  # CPU seconds of this process (all its threads): robust to a busy machine
    path = build_fashion_scenes(tmp_path / "fs", progress=False)
    seconds = time.process_time() - start
    images = json.loads(path.read_text())["images"]
    assert Counter(r["split"] for r in images) == {"train": 6000, "val": 1000, "test": 1000}
    assert seconds < 60, seconds
    words = Counter(t for r in images if r["split"] == "train" for s in r["sentences"] for t in s["tokens"])
    assert len(words) < 150 and min(words.values()) >= 5, (len(words), words.most_common()[-5:])
    assert sum(len({s["raw"] for s in r["sentences"]}) == 5 for r in images) >= 0.99 * len(images)
    stated = check_dataset(images)
    assert min(stated.values()) > 500 and len(stated) == 4, stated
