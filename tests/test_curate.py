"""Curation (match, filter, split) on folders of tiny files the tests write, and the CUB-200-2011 layout."""

import csv

import numpy as np
import pytest

from lienzo import curate
from lienzo.config import config_from_dict
from lienzo.data.hdf5 import load_hdf5
from lienzo.data.sources import load_source
from lienzo.errors import DataError, RunError
from tests.helpers import write_png

VOCAB = ["sunflower", "black swan", "swan", "crane", "crane", "tiger shark, shark", "golden retriever"]


def _tiny(path):
    return write_png(path, np.full((4, 4, 3), 128, np.uint8))


def test_words_split_camel_case_separators_and_digits():
    assert curate.words("BlackSwan_on-lake02") == ["black", "swan", "on", "lake"]


def test_match_tricky_names(tmp_path):
    src = tmp_path / "src"
    names = {
        "Sun_Flower-field.png": "sunflower",      # compound written apart
        "SUNFLOWER.jpg": "sunflower",             # case
        "a-black-swan.png": "black swan",         # stopword dropped; 'black swan' is more specific than 'swan'
        "swan-and-sunflower.png": None,           # two different classes: ambiguous, skipped
        "swan_in_the_lake.png": "swan",
        "blackswan3.png": "black swan",           # compound glued
        "whooping_crane.png": None,               # 'crane' names two classes (bird and machine): ambiguous
        "the_shark.png": "tiger shark",           # synonym
        "goldenRetriever puppy.png": "golden retriever",
        "notes.txt": None,
        "kitchen.png": None,
    }
    for name in names:
        path = src / name
        if name.endswith(".txt"):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("x")
        else:
            _tiny(path)
    counts = curate.match(src, VOCAB, tmp_path / "out")
    assert counts == {"black swan": 2, "golden retriever": 1, "sunflower": 2, "swan": 1, "tiger shark": 1}
    assert sorted(p.name for p in (tmp_path / "out" / "sunflower").iterdir()) == ["SUNFLOWER.jpg", "Sun_Flower-field.png"]
    assert (tmp_path / "out" / "swan" / "swan_in_the_lake.png").is_symlink()
    single = curate.match(src, VOCAB, tmp_path / "single", single_word=True, min_images=2)
    assert single == {"sunflower": 2, "swan": 2}  # "black swan" is two words: its files fall to "swan"
    with pytest.raises(RunError, match="not empty"):
        curate.match(src, VOCAB, tmp_path / "out")
    with pytest.raises(DataError, match="no file name matched"):
        curate.match(src, ["zebra"], tmp_path / "none")


def _scores(tmp_path):
    rows = []
    for i, (cls, prob) in enumerate([("cat", 0.9), ("cat", 0.5), ("dog", 0.8), ("dog", 0.76), ("bird", 0.74)]):
        path = _tiny(tmp_path / "imgs" / f"{i}.png")
        rows.append({"path": str(path), "true": cls, "class1": cls, "prob1": prob})
    path = tmp_path / "scores.csv"
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_filter_by_confidence_and_class(tmp_path):
    scores = _scores(tmp_path)
    assert curate.filter_scored(scores, tmp_path / "a", min_prob=0.75) == {"cat": 1, "dog": 2}
    assert curate.filter_scored(scores, tmp_path / "b", classes=["bird", "cat"]) == {"bird": 1, "cat": 2}
    assert curate.filter_scored(scores, tmp_path / "c", min_prob=0.75, classes=["dog"]) == {"dog": 2}
    with pytest.raises(DataError, match="no image passed"):
        curate.filter_scored(scores, tmp_path / "d", min_prob=0.95)


def _class_folder(root, counts):
    rng = np.random.default_rng(0)
    for cls, n in counts.items():
        for i in range(n):
            write_png(root / cls / f"{i}.png", rng.integers(0, 255, (12, 10, 3), dtype=np.uint8))
    return root


def test_split_counts_into_folders_and_hdf5(tmp_path):
    src = _class_folder(tmp_path / "src", {"a": 20, "b": 10})
    counts = curate.split(src, tmp_path / "out", val=0.1, test=0.2)
    assert counts == {"train": 21, "val": 3, "test": 6}
    assert len(list((tmp_path / "out" / "test" / "a").iterdir())) == 4
    assert len(list((tmp_path / "out" / "test" / "b").iterdir())) == 2
    counts = curate.split(src, tmp_path / "data.h5", val=0.1, test=0.2, image_size=(8, 8))
    assert counts == {"train": 21, "val": 3, "test": 6}
    train, test = load_hdf5(tmp_path / "data.h5", "train"), load_hdf5(tmp_path / "data.h5", "test")
    assert train.images.shape == (21, 3, 8, 8) and len(test) == 6 and train.class_names == ["a", "b"]
    with pytest.raises(RunError):
        curate.split(src, tmp_path / "data.h5")


def test_cub_layout_is_a_data_source(tmp_path):
    root = tmp_path / "CUB_200_2011"
    classes = ["001.Black_footed_Albatross", "002.Laysan_Albatross"]
    lines = {"images.txt": [], "image_class_labels.txt": [], "train_test_split.txt": []}
    for i in range(1, 7):
        cls = classes[i % 2]
        write_png(root / "images" / cls / f"{i}.jpg".replace(".jpg", ".png"), np.full((20, 30, 3), i * 20, np.uint8))
        lines["images.txt"].append(f"{i} {cls}/{i}.png")
        lines["image_class_labels.txt"].append(f"{i} {i % 2 + 1}")
        lines["train_test_split.txt"].append(f"{i} {int(i <= 4)}")
    for name, rows in lines.items():
        (root / name).write_text("\n".join(rows) + "\n")
    (root / "classes.txt").write_text("1 001.Black_footed_Albatross\n2 002.Laysan_Albatross\n")
    cfg = config_from_dict({"data": {"name": "cub", "root": str(root), "image_size": [16, 16]}})
    train, test = load_source(cfg.data)
    assert len(train) == 4 and len(test) == 2 and train.images.shape[1:] == (3, 16, 16)
    assert train.class_names == ["Black footed Albatross", "Laysan Albatross"]
    assert train.labels.tolist() == [1, 0, 1, 0] and int(test.images[0].float().mean()) == 100
    (root / "classes.txt").unlink()
    with pytest.raises(DataError, match="classes.txt: missing"):
        load_source(cfg.data)
