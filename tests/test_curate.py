"""Curation (match, filter, split) on folders of tiny files the tests write, and the CUB-200-2011 layout."""

import csv
from pathlib import Path

import numpy as np
import pytest

from lienzo import curate
from lienzo.tasks import config_from_dict
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
    # the three groups hold every source image once, resized as load_folder resizes it, under its own label
    from lienzo.data.folders import load_folder

    source = load_folder(src, image_size=(8, 8))
    parts = [load_hdf5(tmp_path / "data.h5", part) for part in ("train", "val", "test")]
    pairs = sorted((int(label), image.numpy().tobytes()) for part in parts for image, label in zip(part.images, part.labels))
    assert pairs == sorted((int(label), image.numpy().tobytes()) for image, label in zip(source.images, source.labels))
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


# --- issue 9: plurals, the unsorted list, unique names, score as evaluate, the val split, writable arrays ---


def test_match_plurals_and_lists_what_it_left_out(tmp_path):
    src = tmp_path / "src"
    sorted_as = {
        "three dogs playing.jpg": "dog",
        "Puppies.png": "dog",            # 'puppy' is a synonym of dog: ies
        "foxes_in_snow.png": "fox",      # es
        "wolves.png": "wolf",            # f → ves
        "Butterflies-garden.png": "butterfly",
        "two-black-swans.png": "black swan",  # the last word of a two-word class
        "snowmen.png": "snowman",        # irregular, as a suffix
        "children.png": "child",
        "swans.png": "swan",
    }
    left_out = {"kitchen.png": ("unmatched", ""), "dog_and_fox.png": ("ambiguous", "dog; fox")}
    for name in [*sorted_as, *left_out]:
        _tiny(src / name)
    vocabulary = tmp_path / "classes.txt"
    vocabulary.write_text("# one class per line, synonyms after commas\ndog, puppy\nfox\nwolf\nbutterfly\n"
                          "black swan\nswan\nsnowman\nchild\n")
    counts = curate.match(src, str(vocabulary), tmp_path / "out")
    assert counts == {"black swan": 1, "butterfly": 1, "child": 1, "dog": 2, "fox": 1, "snowman": 1, "swan": 1,
                      "wolf": 1}
    for name, cls in sorted_as.items():
        assert (tmp_path / "out" / cls / name).is_symlink()
    with open(tmp_path / "out" / "unsorted.csv", newline="") as f:
        rows = {row["path"]: (row["reason"], row["classes"]) for row in csv.DictReader(f)}
    assert rows == {str(src / name): why for name, why in left_out.items()}
    # a class under --min-images is listed too, with its name
    curate.match(src, str(vocabulary), tmp_path / "two", min_images=2)
    with open(tmp_path / "two" / "unsorted.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 9 and {r["reason"] for r in rows} == {"unmatched", "ambiguous", "class under 2 images"}
    assert {r["classes"] for r in rows if r["reason"] == "class under 2 images"} == {
        "black swan", "butterfly", "child", "fox", "snowman", "swan", "wolf"}


def test_imagenet_vocabulary_leaves_out_its_two_cranes(tmp_path):
    """README: ImageNet has two `crane`s (the bird and the machine), so crane.jpg is ambiguous and left
    out. torchvision renamed the bird `crane bird` (and the second `maillot` `maillot tank suit`), which
    had sorted crane.jpg under the machine."""
    src = tmp_path / "src"
    sorted_as = {
        "crane-bird.png": "crane bird",            # the more specific name wins over `crane`
        "tank_suit.png": "maillot tank suit",      # more specific than `tank` and `suit`
        "goldfish-bowl.png": "goldfish",
        "sewing machine.png": "sewing machine",
    }
    left_out = {"crane.png": "crane bird; crane", "Crane_lifting_steel.png": "crane bird; crane",
                "maillot.png": "maillot; maillot tank suit"}
    for name in [*sorted_as, *left_out]:
        _tiny(src / name)
    counts = curate.match(src, "imagenet", tmp_path / "out")
    assert counts == {"crane bird": 1, "goldfish": 1, "maillot tank suit": 1, "sewing machine": 1}
    for name, cls in sorted_as.items():
        assert (tmp_path / "out" / cls / name).is_symlink()
    with open(tmp_path / "out" / "unsorted.csv", newline="") as f:
        rows = {Path(row["path"]).name: (row["reason"], row["classes"]) for row in csv.DictReader(f)}
    assert rows == {name: ("ambiguous", classes) for name, classes in left_out.items()}
    assert not (tmp_path / "out" / "crane").exists()


def test_plural_forms():
    assert {"dogs"} <= curate.plural_forms("dog") and "foxes" in curate.plural_forms("fox")
    assert "puppies" in curate.plural_forms("puppy") and "boys" in curate.plural_forms("boy")
    assert "boies" not in curate.plural_forms("boy")  # vowel + y takes a plain s
    assert {"knives", "leaves", "firemen", "mice", "geese"} <= (curate.plural_forms("knife") | curate.plural_forms("leaf")
                                                                 | curate.plural_forms("fireman")
                                                                 | curate.plural_forms("mouse")
                                                                 | curate.plural_forms("goose"))


def _two_of_one_name(src):
    """src/a/dog.png and src/b/dog.png, different pictures with one name."""
    first = write_png(src / "a" / "dog.png", np.full((4, 4, 3), 10, np.uint8))
    second = write_png(src / "b" / "dog.png", np.full((4, 4, 3), 200, np.uint8))
    return first, second


def _pixel(path):
    from PIL import Image

    with Image.open(path) as image:
        return image.getpixel((0, 0))[0]


@pytest.mark.parametrize("copy", [False, True])
def test_match_never_overwrites_files_of_one_name(tmp_path, caplog, copy):
    _two_of_one_name(tmp_path / "src")
    with caplog.at_level("INFO", logger="lienzo"):
        assert curate.match(tmp_path / "src", ["dog"], tmp_path / "out", copy=copy) == {"dog": 2}
    placed = sorted((tmp_path / "out" / "dog").iterdir())
    assert [p.name for p in placed] == ["dog-2.png", "dog.png"]
    assert sorted(_pixel(p) for p in placed) == [10, 200]  # both pictures, neither written over the other
    assert all(p.is_symlink() != copy for p in placed)
    assert "1 renamed" in caplog.text and "dog-2.png (dog.png was taken)" in caplog.text


def test_filter_and_split_never_overwrite_files_of_one_name(tmp_path, caplog):
    first, second = _two_of_one_name(tmp_path / "src")
    scores = tmp_path / "scores.csv"
    scores.write_text(f"path,true,class1,prob1\n{first},dog,dog,0.9\n{second},dog,dog,0.8\n")
    with caplog.at_level("INFO", logger="lienzo"):
        assert curate.filter_scored(scores, tmp_path / "kept", min_prob=0.5, copy=True) == {"dog": 2}
    assert sorted(_pixel(p) for p in (tmp_path / "kept" / "dog").iterdir()) == [10, 200]
    assert "1 renamed" in caplog.text
    # split: one class folder whose sub-folders hold files of one name
    for i in range(3):
        write_png(tmp_path / "classes" / "dog" / f"s{i}" / "x.png", np.full((4, 4, 3), 50 * i, np.uint8))
        write_png(tmp_path / "classes" / "cat" / f"x{i}.png", np.full((4, 4, 3), 7, np.uint8))
    caplog.clear()
    with caplog.at_level("INFO", logger="lienzo"):
        assert curate.split(tmp_path / "classes", tmp_path / "parts", val=0, test=0) == {"train": 6, "val": 0, "test": 0}
    dogs = sorted((tmp_path / "parts" / "train" / "dog").iterdir())
    assert [p.name for p in dogs] == ["x-2.png", "x-3.png", "x.png"] and sorted(_pixel(p) for p in dogs) == [0, 50, 100]
    assert "2 renamed" in caplog.text


def test_score_is_evaluate_with_the_runs_tta_and_names_its_k(tmp_path):
    import torch

    from lienzo import load_config, train
    from lienzo.data.idx import load_idx_split
    from lienzo.data.transforms import Normalizer
    from lienzo.evaluate import load_run
    from lienzo.metrics.classification import classification_metrics
    from tests.helpers import write_idx_dataset

    root = write_idx_dataset(tmp_path / "data", n_train=60, n_test=12)
    run = train(load_config("configs/fashion_basenet.yaml", [
        f"data.root={root}", "data.batch_size=30", "trainer.max_epochs=1", "trainer.progress=false",
        f"run.dir={tmp_path / 'runs'}", "trainer.tta=true", "optim.lr=0.05"]))
    loaded = load_run(run)
    assert loaded.config.trainer.tta
    test = load_idx_split(root, "test", loaded.class_names)
    for i in range(len(test)):
        write_png(tmp_path / "imgs" / loaded.class_names[int(test.labels[i])] / f"{i:02d}.png", test.images[i, 0].numpy())
    summary = curate.score(run, tmp_path / "imgs", tmp_path / "scores.csv", top_k=2)
    # what evaluate computes: the mean of the image's and its mirror's logits, in fp32 for so small a model
    with torch.no_grad():
        x = Normalizer(loaded.mean, loaded.std)(test.images)
        plain = loaded.model.float()(x)
        logits = (plain + loaded.model(x.flip(3))) / 2
    probs = logits.softmax(1)
    assert (probs - plain.softmax(1)).abs().max() > 1e-3  # the test can tell tta from none
    with open(tmp_path / "scores.csv", newline="") as f:
        rows = sorted(csv.DictReader(f), key=lambda r: Path(r["path"]).name)  # 00.png ... 11.png: image i
    assert len(rows) == 12 and set(rows[0]) == {"path", "true", "class1", "prob1", "class2", "prob2"}
    for i, row in enumerate(rows):
        order = probs[i].argsort(descending=True, stable=True)
        assert [row["class1"], row["class2"]] == [loaded.class_names[int(c)] for c in order[:2]]
        assert [float(row["prob1"]), float(row["prob2"])] == pytest.approx(probs[i, order[:2]].tolist(), abs=2e-6)
    expected = classification_metrics(logits, test.labels, loaded.class_names)["per_class"]
    for name, figures in summary.items():
        assert set(figures) == {"count", "top1", "top2", "cross_entropy"}
        assert figures["count"] == expected[name]["count"] and figures["top1"] == expected[name]["top1"]
        assert figures["cross_entropy"] == pytest.approx(expected[name]["cross_entropy"], abs=1e-5)
        ranks = [int((probs[i] > probs[i, int(test.labels[i])]).sum()) for i in range(12)
                 if loaded.class_names[int(test.labels[i])] == name]
        assert figures["top2"] == sum(r < 2 for r in ranks) / len(ranks)
    with open(tmp_path / "scores.classes.csv", newline="") as f:
        assert list(csv.DictReader(f))[0].keys() == {"class", "count", "top1", "top2", "cross_entropy"}


def test_split_val_group_is_the_validation_split(tmp_path, caplog):
    import torch

    from lienzo.tasks.classify.data import ClassificationData

    src = _class_folder(tmp_path / "src", {"a": 20, "b": 10})
    assert curate.split(src, tmp_path / "data.h5", val=0.2, test=0.1, image_size=(8, 8)) == {
        "train": 21, "val": 6, "test": 3}
    val = load_hdf5(tmp_path / "data.h5", "val")
    cfg = config_from_dict({"data": {"name": "hdf5", "root": str(tmp_path / "data.h5"), "val_fraction": 0.1}})
    data = ClassificationData(cfg.data)
    with caplog.at_level("INFO", logger="lienzo"):
        data.setup()
    assert len(data.train_arrays) == 21 and len(data.test_arrays) == 3  # all of train: no 10 % held out
    assert torch.equal(data.val_arrays.images, val.images) and torch.equal(data.val_arrays.labels, val.labels)
    assert "data.val_fraction (0.1) is not applied" in caplog.text
    # the folder layout that split writes reads the same way
    curate.split(src, tmp_path / "parts", val=0.2, test=0.1)
    cfg = config_from_dict({"data": {"name": "folder", "root": str(tmp_path / "parts"), "image_size": [8, 8]}})
    data = ClassificationData(cfg.data)
    data.setup()
    assert (len(data.train_arrays), len(data.val_arrays), len(data.test_arrays)) == (21, 6, 3)


def test_score_and_split_leave_no_unwritable_array_warning(tmp_path):
    """PyTorch warns once per process, so the check runs in a fresh one with that warning made an error."""
    import subprocess
    import sys

    for i in range(4):
        write_png(tmp_path / "src" / "grey" / f"{i}.png", np.full((6, 6), 30 * i, np.uint8))
        write_png(tmp_path / "src" / "rgb" / f"{i}.png", np.full((6, 6, 3), 30 * i, np.uint8))
    code = ("import sys; from lienzo import curate; from lienzo.data.images import load_image\n"
            "load_image(sys.argv[1] + '/src/grey/0.png', 1); load_image(sys.argv[1] + '/src/rgb/0.png', 1)\n"
            "curate.split(sys.argv[1] + '/src', sys.argv[1] + '/d.h5', val=0.25, test=0.25, channels=1)\n")
    done = subprocess.run([sys.executable, "-W", "error:The given NumPy array is not writable", "-c", code,
                           str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "d.h5").is_file()


# --- issue 10: filter on HDF5 files of RGB+mask samples ---


@pytest.fixture(scope="module")
def grey_run(tmp_path_factory):
    """A BaseNet run on tiny 28×28 grey images, its test images, and the run's probabilities for them."""
    from lienzo import load_config, train
    from lienzo.data.idx import load_idx_split
    from lienzo.evaluate import load_run
    from lienzo.tasks.classify import run_logits
    from tests.helpers import write_idx_dataset

    tmp_path = tmp_path_factory.mktemp("grey_run")
    root = write_idx_dataset(tmp_path / "data", n_train=60, n_test=12)
    run = train(load_config("configs/fashion_basenet.yaml", [
        f"data.root={root}", "data.batch_size=30", "trainer.max_epochs=1", "trainer.progress=false",
        f"run.dir={tmp_path / 'runs'}", "optim.lr=0.05"]))
    loaded = load_run(run)
    test = load_idx_split(root, "test", loaded.class_names)
    return run, loaded.class_names, test, run_logits(loaded, test.images).softmax(1)


def _rgb_mask(grey):
    """N×1×H×W grey images as N×H×W×4 RGB+mask samples: RGB = the grey copied, mask = a square per image."""
    import torch

    masks = torch.zeros_like(grey)
    for i in range(len(grey)):
        masks[i, 0, i : i + 10, 2 : 12 + i] = 255
    return torch.cat([grey.expand(-1, 3, -1, -1), masks], 1).permute(0, 2, 3, 1).numpy()


def _threshold_between(values, kept: int) -> float:
    """A threshold that keeps the `kept` largest of distinct values."""
    ordered = sorted(values, reverse=True)
    assert ordered[kept - 1] > ordered[kept]
    return (ordered[kept - 1] + ordered[kept]) / 2


def test_filter_hdf5_keeps_rgb_mask_samples_the_run_is_sure_of(grey_run, tmp_path):
    from lienzo.data.hdf5 import write_hdf5

    run, names, test, probs = grey_run
    samples = _rgb_mask(test.images)
    write_hdf5(tmp_path / "masks.h5", samples, test.labels.numpy(), names)
    own = probs[range(len(test)), test.labels]  # the run knows every class of the file: its own class counts
    min_prob = _threshold_between(own.tolist(), kept=5)
    result = curate.filter_hdf5(run, tmp_path / "masks.h5", tmp_path / "kept.h5", min_prob=min_prob)
    keep = (own >= min_prob).numpy()
    kept = load_hdf5(tmp_path / "kept.h5", "train")
    assert keep.sum() == 5 and kept.class_names == names and kept.shape == (4, 28, 28)
    assert np.array_equal(kept.images.permute(0, 2, 3, 1).numpy(), samples[keep])  # the mask kept as it was
    assert np.array_equal(kept.labels.numpy(), test.labels.numpy()[keep])
    present = [n for n in names if n in {names[c] for c in test.labels.tolist()}]
    assert list(result["counts"]) == present == list(result["removed"])
    for name in present:
        of_class = np.array([names[c] == name for c in test.labels.tolist()])
        assert result["counts"][name] == (keep & of_class).sum()
        assert result["removed"][name] == (~keep & of_class).sum()
    assert (own >= min_prob).tolist() != (probs.max(1).values >= min_prob).tolist()  # own class ≠ top-1 here
    with pytest.raises(RunError, match="exists"):
        curate.filter_hdf5(run, tmp_path / "masks.h5", tmp_path / "kept.h5")


def test_filter_hdf5_unknown_names_go_by_top1_and_groups_stay(grey_run, tmp_path, caplog):
    from lienzo.data.hdf5 import write_hdf5

    run, _, test, probs = grey_run
    samples, labels = _rgb_mask(test.images), test.labels.numpy()
    file_names = ["a", "b", "c"]
    write_hdf5(tmp_path / "split.h5", samples[:8], labels[:8], file_names, "train")
    write_hdf5(tmp_path / "split.h5", samples[8:], labels[8:], file_names, "test")
    top1 = probs.max(1).values
    min_prob = _threshold_between(top1.tolist(), kept=6)
    with caplog.at_level("INFO", logger="lienzo"):
        result = curate.filter_hdf5(run, tmp_path / "split.h5", tmp_path / "kept.h5", min_prob=min_prob)
    assert "class 'a' is not one of the run's classes: keeping by the top-1 probability" in caplog.text
    keep = (top1 >= min_prob).numpy()
    assert sum(result["counts"].values()) == 6 and sum(result["removed"].values()) == 6
    for part, rows in (("train", slice(0, 8)), ("test", slice(8, 12))):
        kept = load_hdf5(tmp_path / "kept.h5", part)
        assert np.array_equal(kept.images.permute(0, 2, 3, 1).numpy(), samples[rows][keep[rows]]), part
        assert kept.class_names == file_names and np.array_equal(kept.labels.numpy(), labels[rows][keep[rows]])
    with pytest.raises(DataError, match=r"class 'a' is not one of the run's classes.*--by predicted"):
        curate.filter_hdf5(run, tmp_path / "split.h5", tmp_path / "true.h5", by="true")
    with pytest.raises(DataError, match="no sample passed the filter"):
        curate.filter_hdf5(run, tmp_path / "split.h5", tmp_path / "none.h5", min_prob=1.0)
    assert not (tmp_path / "none.h5").exists() and not (tmp_path / "none.h5.partial").exists()


def test_filter_hdf5_from_the_cli(grey_run, tmp_path, capsys):
    import json

    from lienzo.cli import main
    from lienzo.data.hdf5 import write_hdf5

    run, names, test, probs = grey_run
    write_hdf5(tmp_path / "masks.h5", _rgb_mask(test.images), test.labels.numpy(), names)
    top1 = probs.max(1).values
    min_prob = _threshold_between(top1.tolist(), kept=3)
    assert main(["curate", "filter", str(run), str(tmp_path / "masks.h5"), "--min-prob", str(min_prob), "--by",
                 "predicted", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["out"] == str(tmp_path / "masks_kept.h5") and printed["total"] == 3  # beside FILE.h5
    assert sum(printed["removed"].values()) == 9
    assert load_hdf5(tmp_path / "masks_kept.h5", "train").images.shape == (3, 4, 28, 28)
    assert main(["curate", "filter", str(run), str(tmp_path / "masks.h5"), "--copy"]) == 2
    assert "--classes and --copy apply to a scores CSV" in capsys.readouterr().err


def test_fit_to_run_converts_and_resizes_as_files_are_read():
    import torch

    colours = torch.tensor([[[10, 20], [30, 40]], [[50, 60], [70, 80]], [[90, 100], [110, 120]]], dtype=torch.uint8)
    images = colours.repeat_interleave(2, 1).repeat_interleave(2, 2).unsqueeze(0)  # 1×3×4×4 in 2×2 blocks
    assert torch.equal(curate.fit_to_run(images, (3, 2, 2)), colours.unsqueeze(0))  # the area average
    grey = curate.fit_to_run(images, (1, 2, 2))
    luma = (0.299 * colours[0] + 0.587 * colours[1] + 0.114 * colours[2]).round().to(torch.uint8)
    assert grey.shape == (1, 1, 2, 2) and torch.equal(grey[0, 0], luma)
