"""Features files (HDF5 round trip, resume), SVMs chosen by cross-validation, t-SNE, and their bad input."""

import logging

import h5py
import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, StratifiedKFold

from lienzo.tasks import config_from_dict
from lienzo.errors import ConfigError, DataError, ModelError, RunError
from lienzo.metrics import classification_metrics
from lienzo.models import create_model
from lienzo.runs import read_json
from lienzo.transfer import features as features_module
from lienzo.transfer.backbones import Backbone, Preprocess
from lienzo.transfer.features import extract_features, read_features, write_features
from lienzo.transfer.svm import evaluate_svm, fit_svm, load_svm, make_pipeline, param_grid
from lienzo.transfer.tsne import tsne, tsne_map
from tests.helpers import write_idx_dataset


def _basenet_backbone(seed=0):
    torch.manual_seed(seed)
    model = create_model("basenet", num_classes=3, in_chans=1, input_size=(28, 28)).eval()
    return Backbone("basenet", model, "test", Preprocess([0.5], [0.25], 1, None, None, (28, 28)), None, "")


def _idx_cfg(tmp_path, n_train=60, n_test=30):
    root = write_idx_dataset(tmp_path / "idx", n_train=n_train, n_test=n_test)
    return config_from_dict({"data": {"name": "idx", "root": str(root)}}).data


def test_extract_writes_every_split_with_attributes(tmp_path):
    cfg = _idx_cfg(tmp_path)
    backbone = _basenet_backbone()
    out = extract_features(backbone, "penultimate", cfg, tmp_path / "f.h5", batch_size=16, progress=False,
                           precision="32")
    train, test = read_features(out, "train"), read_features(out, "test")
    assert train.features.shape == (60, 50) and test.features.shape == (30, 50)
    assert train.attrs["backbone"] == "basenet" and train.attrs["layer"] == "penultimate" and train.attrs["dim"] == 50
    assert "mean" in train.attrs["preprocessing"] and train.attrs["complete"]
    # the same numbers as running the network by hand on the normalised images
    from lienzo.data.sources import load_source

    images = load_source(cfg)[0].images
    with torch.no_grad():
        x = (images.float() / 255 - 0.5) / 0.25
        want = backbone.model.forward_head(backbone.model.forward_features(x), pre_logits=True)
    assert np.allclose(train.features, want.numpy(), atol=1e-5)
    assert train.labels.tolist() == load_source(cfg)[0].labels.tolist()
    with pytest.raises(RunError, match="never overwritten"):
        extract_features(backbone, "penultimate", cfg, out, progress=False)


def test_interrupted_extraction_leaves_no_final_file_and_resumes(tmp_path, monkeypatch):
    cfg = _idx_cfg(tmp_path)
    clean = extract_features(_basenet_backbone(), "penultimate", cfg, tmp_path / "clean.h5", batch_size=8,
                             progress=False, precision="32")
    monkeypatch.setattr(features_module, "COMMIT_SECONDS", 0.0)
    backbone = _basenet_backbone()
    calls = {"n": 0}
    original = backbone.model.forward

    def flaky(x):
        if len(x) == 1:  # the one-image pass that sizes the model for precision auto
            return original(x)
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return original(x)

    backbone.model.forward = flaky
    out = tmp_path / "f.h5"
    with pytest.raises(KeyboardInterrupt):
        extract_features(backbone, "penultimate", cfg, out, batch_size=8, progress=False, precision="32")
    assert not out.exists() and (tmp_path / "f.h5.partial").exists()
    with h5py.File(tmp_path / "f.h5.partial") as f:
        assert f["train"].attrs["done"] == 24 and not f.attrs["complete"]
    extract_features(backbone, "penultimate", cfg, out, batch_size=8, progress=False, precision="32")
    assert calls["n"] == 4 + (60 - 24) // 8 + 1 + 30 // 8 + 1  # resumed at image 24, not from the start
    for split in ("train", "test"):
        a, b = read_features(out, split), read_features(clean, split)
        assert np.allclose(a.features, b.features, atol=1e-6) and (a.labels == b.labels).all()


@pytest.fixture(scope="module")
def digits_features(tmp_path_factory):
    """Real features: scikit-learn's bundled 8×8 digits (64 dimensions)."""
    digits = load_digits()
    x, y = digits.data.astype(np.float32), digits.target
    rng = np.random.default_rng(0)
    order = rng.permutation(len(y))
    train, test = order[:600], order[600:900]
    path = tmp_path_factory.mktemp("feats") / "digits.h5"
    return write_features(path, {"train": (x[train], y[train]), "test": (x[test], y[test])},
                          [str(i) for i in range(10)], backbone="pixels", layer="input", weights="none")


def test_svm_grid_search_chooses_what_sklearn_chooses(tmp_path, digits_features):
    out = fit_svm(digits_features, tmp_path / "svm", kernels=("linear", "rbf"), C=(0.1, 1.0, 10.0),
                  gamma=("scale", 1e-3), folds=3, n_jobs=1)
    params = read_json(out / "params.json")
    data = read_features(digits_features, "train")
    reference = GridSearchCV(make_pipeline(True, False, 0), param_grid(("linear", "rbf"), (0.1, 1.0, 10.0), ("scale", 1e-3)),
                             cv=StratifiedKFold(3, shuffle=True, random_state=0)).fit(data.features, data.labels)
    assert params["best_params"] == {k.removeprefix("svm__"): v for k, v in reference.best_params_.items()}
    assert params["cv_score"] == pytest.approx(reference.best_score_) and params["cv_score"] > 0.9
    assert params["dim"] == 64 and params["backbone"] == "pixels"
    rows = (out / "cv_results.csv").read_text().splitlines()
    assert len(rows) == 1 + 3 + 3 * 2  # header, linear × 3 C, rbf × 3 C × 2 gamma
    metrics, path = evaluate_svm(out, digits_features)
    assert metrics["count"] == 300 and metrics["top1"] > 0.9 and metrics["top5"] >= metrics["top1"]
    assert metrics["cross_entropy"] is None and path.parent.name == "evaluations"
    assert sum(v["count"] for v in metrics["per_class"].values()) == 300
    _, second = evaluate_svm(out, digits_features)
    assert second != path  # never overwritten


def test_top5_from_decision_ranks_by_hand():
    scores = torch.tensor([[0.9, 0.1, 0.3, -1.0, 0.0, 0.2, 0.5],    # target 3 ranks 7th → not in top-5
                           [-0.2, 0.4, 0.1, 0.8, 0.0, 0.3, -0.5],   # target 4 ranks 5th → in top-5
                           [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]])   # ties: lower index first, target 6 is 7th
    m = classification_metrics(scores, torch.tensor([3, 4, 6]), list("abcdefg"), cross_entropy=False)
    assert m["top5"] == pytest.approx(1 / 3) and m["top1"] == 0.0 and m["cross_entropy"] is None


def test_svm_bad_input(tmp_path, digits_features):
    one_class = write_features(tmp_path / "one.h5", {"train": (np.ones((5, 3)), np.zeros(5))}, ["a", "b"])
    with pytest.raises(DataError, match="one class only"):
        fit_svm(one_class, tmp_path / "svm")
    out = fit_svm(digits_features, tmp_path / "svm", kernels=("linear",), C=(1.0,), folds=2, n_jobs=1)
    other_dim = write_features(tmp_path / "dim.h5", {"test": (np.ones((4, 8)), np.arange(4))},
                               [str(i) for i in range(10)], backbone="pixels", layer="input", weights="none")
    with pytest.raises(ModelError, match="8 dimensions, the SVM was fitted on 64"):
        evaluate_svm(out, other_dim)
    other_layer = write_features(tmp_path / "layer.h5", {"test": (np.ones((4, 64)), np.arange(4))},
                                 [str(i) for i in range(10)], backbone="pixels", layer="fc7", weights="none")
    with pytest.raises(ModelError, match="layer 'fc7', the SVM from 'input'"):
        evaluate_svm(out, other_layer)
    with h5py.File(tmp_path / "nolabels.h5", "w") as f:
        f.attrs["complete"] = True
        f.create_dataset("class_names", data=np.array(["a"], dtype=h5py.string_dtype()))
        f.create_group("train").create_dataset("features", data=np.ones((3, 2)))
    with pytest.raises(DataError, match="has no labels"):
        fit_svm(tmp_path / "nolabels.h5", tmp_path / "svm")
    with pytest.raises(DataError, match="not an HDF5 file"):
        (tmp_path / "junk.h5").write_text("junk")
        read_features(tmp_path / "junk.h5")


def _blobs(n_per_class=40, classes=4, dim=32, seed=0):
    """Well-separated Gaussian blobs: class c around 6·e_c, unit noise."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(classes), n_per_class)
    centres = 6.0 * np.eye(classes, dim)
    return (centres[labels] + rng.standard_normal((len(labels), dim))).astype(np.float32), labels


def test_tsne_keeps_well_separated_classes_apart(tmp_path):
    x, y = _blobs()
    points = tsne_map(x, seed=0)
    assert points.shape == (len(y), 2)
    distances = np.linalg.norm(points[:, None] - points[None], axis=2)
    np.fill_diagonal(distances, np.inf)
    assert (y[distances.argmin(1)] == y).mean() >= 0.95  # 1-NN in the map finds the class
    centroids = np.stack([points[y == c].mean(0) for c in range(4)])
    nearest = np.linalg.norm(points[:, None] - centroids[None], axis=2).argmin(1)
    assert (nearest == y).mean() >= 0.95
    # the file: next to the features, of the sampled points
    features = write_features(tmp_path / "blobs.h5", {"train": (x, y)}, list("abcd"), backbone="b", layer="l")
    path = tsne(features, max_points=100)
    assert path == tmp_path / "blobs.train.tsne.png" and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_tsne_of_a_runs_features_goes_next_to_them_unless_asked_into_the_run(tmp_path):
    run = tmp_path / "runs" / "source"
    (run / "plots").mkdir(parents=True)
    (run / "config.yaml").write_text("model: {arch: basenet}\n")
    x, y = _blobs(n_per_class=10)
    spec = {"backbone": str(run), "weights": None}
    features = write_features(tmp_path / "feats.h5", {"train": (x, y)}, list("abcd"), spec=spec)
    assert tsne(features) == tmp_path / "feats.train.tsne.png" and not any((run / "plots").iterdir())
    into = tsne(features, into_run=True)
    assert into == run / "plots" / "tsne-feats-train.png" and into.is_file()
    with pytest.raises(ConfigError, match="either an output file or into_run"):
        tsne(features, tmp_path / "x.png", into_run=True)
    plain = write_features(tmp_path / "plain.h5", {"train": (x, y)}, list("abcd"), backbone="resnet18")
    with pytest.raises(RunError, match="not made by a lienzo run's network"):
        tsne(plain, into_run=True)


def test_nan_or_infinite_features_are_one_data_error(tmp_path, digits_features):
    x, y = _blobs(n_per_class=10)
    x[3, 5], x[17, 0] = np.nan, np.inf
    bad = write_features(tmp_path / "bad.h5", {"train": (x, y), "test": (x, y)}, list("abcd"), backbone="b", layer="l")
    expected = r"bad\.h5: split '(train|test)' has 2 of 40 rows with NaN or infinite features \(first: row 3\)"
    with pytest.raises(DataError, match=expected):
        fit_svm(bad, tmp_path / "svm", kernels=("linear",), C=(1.0,), folds=2, n_jobs=1)
    with pytest.raises(DataError, match=expected):
        tsne(bad, split="test")
    good = write_features(tmp_path / "good.h5", {"train": (np.nan_to_num(x, posinf=0), y)}, list("abcd"),
                          backbone="b", layer="l")
    model = fit_svm(good, tmp_path / "svm", kernels=("linear",), C=(1.0,), folds=2, n_jobs=1)
    with pytest.raises(DataError, match=expected.replace("(train|test)", "test")):
        evaluate_svm(model, bad, "test")


def test_svm_with_probabilities_has_cross_entropy_per_class(tmp_path, digits_features):
    out = fit_svm(digits_features, tmp_path / "svm", kernels=("linear",), C=(1.0,), folds=3, n_jobs=1,
                  probability=True)
    metrics, _ = evaluate_svm(out, digits_features)
    model = load_svm(out)
    data = read_features(digits_features, "test")
    probs = np.clip(model["calibrated"].predict_proba(data.features), 1e-12, 1)
    losses = -np.log(probs[np.arange(len(data.labels)), data.labels])
    assert metrics["cross_entropy"] == pytest.approx(losses.mean())
    for c in range(10):
        assert metrics["per_class"][str(c)]["cross_entropy"] == pytest.approx(losses[data.labels == c].mean())
    counts = np.array([metrics["per_class"][str(c)]["count"] for c in range(10)])
    per_class = np.array([metrics["per_class"][str(c)]["cross_entropy"] for c in range(10)])
    assert (per_class * counts).sum() / counts.sum() == pytest.approx(metrics["cross_entropy"])


def test_svm_fit_says_its_result_once(tmp_path, digits_features, capsys, caplog):
    from lienzo.cli import main

    caplog.set_level(logging.DEBUG, logger="lienzo")
    assert main(["svm", "fit", str(digits_features), "--out", str(tmp_path / "svm"), "--kernels", "linear",
                 "--folds", "2"]) == 0
    printed = capsys.readouterr()
    said = printed.out + printed.err + "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.INFO)
    assert said.count("CV top-1") == 1 and "CV top-1" in printed.out


def test_strict_data_makes_an_unreadable_image_an_error(tmp_path):
    from tests.helpers import tiny_images, write_png

    images, labels = tiny_images(6, size=28)
    for i, (image, label) in enumerate(zip(images, labels)):
        write_png(tmp_path / "imgs" / f"c{label}" / f"{i}.png", image)
    (tmp_path / "imgs" / "c0" / "broken.png").write_bytes(b"not a png")
    lenient = config_from_dict({"data": {"name": "folder", "root": str(tmp_path / "imgs")}}).data
    out = extract_features(_basenet_backbone(), "penultimate", lenient, tmp_path / "f.h5", progress=False,
                           precision="32")
    assert read_features(out).features.shape == (6, 50)  # skipped, with a warning
    strict = config_from_dict({"data": {"name": "folder", "root": str(tmp_path / "imgs"), "strict": True}}).data
    with pytest.raises(DataError, match=r"broken\.png.*data\.strict"):
        extract_features(_basenet_backbone(), "penultimate", strict, tmp_path / "g.h5", progress=False, precision="32")
    assert not (tmp_path / "g.h5").exists()
