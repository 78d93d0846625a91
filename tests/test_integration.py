"""End to end on the real Fashion-MNIST (Debian's dataset-fashion-mnist)."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import assert_page_renders
import torch
from PIL import Image

from lienzo import evaluate, load_config, train
from lienzo.config import FinetuneGroup
from lienzo.cli import main
from lienzo.data.idx import load_idx_split, FASHION_MNIST_CLASSES

pytestmark = pytest.mark.slow
THREE = "data.classes=[Trouser, Bag, Sneaker]"


@pytest.fixture(scope="module")
def short_run(tmp_path_factory, fashion_root):
    runs = tmp_path_factory.mktemp("runs")
    cfg = load_config("configs/fashion_basenet.yaml",
                      ["trainer.max_epochs=1", f"run.dir={runs}", "trainer.progress=false"])
    return train(cfg)


def _softmax_by_hand(run, images: torch.Tensor) -> torch.Tensor:
    """Class probabilities of a run's best network for N×H×W grey uint8 images, computed here without
    lienzo's prediction code: (x/255 − mean)/std, the network in fp32, softmax."""
    from lienzo.evaluate import load_run

    metrics = json.loads((Path(run) / "metrics.json").read_text())
    assert metrics["precision"] == "32-true"  # these checks compare fp32 numbers
    loaded = load_run(run)
    mean, std = torch.tensor(loaded.info["mean"]), torch.tensor(loaded.info["std"])
    x = (images.reshape(len(images), 1, *images.shape[-2:]).float() / 255 - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)
    with torch.no_grad():
        return loaded.model.float().eval()(x).softmax(1)


def test_short_run_beats_chance_and_fills_the_run_folder(short_run):
    run = Path(short_run)
    for name in ("config.yaml", "metrics.json", "history.csv", "report.html", "checkpoints/best.ckpt",
                 "checkpoints/last.ckpt", "plots/curves.png", "plots/confusion.png", "plots/per_class.png",
                 "plots/predictions.png"):
        assert (run / name).is_file(), name
    metrics = json.loads((run / "metrics.json").read_text())
    for split, count in (("val", 6000), ("test", 10000)):
        m = metrics[split]
        assert m["count"] == count and m["top1"] > 0.6 and m["top5"] > m["top1"]  # chance is 0.1
        assert set(m["per_class"]) == set(FASHION_MNIST_CLASSES)
        assert sum(v["count"] for v in m["per_class"].values()) == count
        assert np.asarray(m["confusion"]).sum() == count and np.asarray(m["confusion"]).shape == (10, 10)
        assert abs(np.trace(np.asarray(m["confusion"])) / count - m["top1"]) < 1e-6
    assert metrics["class_names"] == FASHION_MNIST_CLASSES and len(metrics["mean"]) == 1
    history = (run / "history.csv").read_text().splitlines()
    assert history[0].startswith("epoch,train_loss,train_top1,val_loss,val_top1,lr,seconds") and len(history) == 2
    assert load_config(run / "config.yaml").run.name == run.name


def test_a_run_is_never_overwritten(short_run, capsys):
    cfg = load_config(Path(short_run) / "config.yaml", ["trainer.max_epochs=1", "data.classes=[Bag, Sandal]"])
    cfg.run.name = Path(short_run).name
    second = train(cfg)
    assert second.name == f"{Path(short_run).name}-2" and (Path(short_run) / "metrics.json").is_file()


def test_evaluate_writes_its_own_file(short_run):
    before = (Path(short_run) / "metrics.json").read_bytes()
    result, path = evaluate(short_run)
    assert path.parent.name == "evaluations" and path.is_file()
    assert (Path(short_run) / "metrics.json").read_bytes() == before
    assert result["top1"] == pytest.approx(json.loads(before)["test"]["top1"], abs=1e-9)
    _, second = evaluate(short_run)
    assert second != path


def test_predict_image_files(short_run, tmp_path, fashion_root, capsys):
    test = load_idx_split(fashion_root, "test", FASHION_MNIST_CLASSES)
    paths = []
    for i in range(30):
        image = test.images[i, 0].numpy()
        if i % 3 == 0:  # other sizes and modes are resized and converted as in training
            pil = Image.fromarray(image).resize((56, 56)).convert("RGB")
        else:
            pil = Image.fromarray(image)
        paths.append(tmp_path / f"{i}.png")
        pil.save(paths[-1])
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"nope")
    code = main(["predict", str(short_run), *map(str, paths), str(bad), "--json", "--top-k", "3"])
    results = json.loads(capsys.readouterr().out)
    assert code == 3 and "error" in results[-1] and "broken.jpg" in results[-1]["error"]  # 3: some inputs failed
    right = sum(r["predictions"][0]["class"] == FASHION_MNIST_CLASSES[int(test.labels[i])]
                for i, r in enumerate(results[:-1]))
    assert right >= 15 and all(len(r["predictions"]) == 3 for r in results[:-1])  # chance: 3 of 30
    # files at the training size and mode give exactly the in-memory evaluation's answer
    from lienzo.evaluate import load_run
    from lienzo.tasks.classify import predict_logits

    loaded = load_run(short_run)
    logits = predict_logits(loaded.model, test.images[:30], loaded.mean, loaded.std)
    for i in range(30):
        if i % 3:
            assert results[i]["predictions"][0]["class"] == FASHION_MNIST_CLASSES[int(logits[i].argmax())]
    probs = [p["probability"] for p in results[0]["predictions"]]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1.0001


def _lienzo(*args, **kw):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "lienzo", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, **kw)


def test_resume_after_kill_matches_uninterrupted_run(tmp_path, fashion_root):
    args = ["train", "configs/fashion_basenet.yaml", THREE, "trainer.max_epochs=3", f"run.dir={tmp_path}",
            "trainer.progress=false", "optim.schedule=cosine", "data.augment=basic"]
    full = _lienzo(*args, "run.name=full")
    assert full.wait(300) == 0, full.stdout.read()
    victim = _lienzo(*args, "run.name=killed")
    last = tmp_path / "killed" / "checkpoints" / "last.ckpt"
    deadline = time.time() + 240
    while not last.exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # somewhere inside the second epoch
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert not (tmp_path / "killed" / "metrics.json").exists()
    resumed = _lienzo("train", "--resume", str(tmp_path / "killed"))
    assert resumed.wait(300) == 0, resumed.stdout.read()
    a = json.loads((tmp_path / "full" / "metrics.json").read_text())
    b = json.loads((tmp_path / "killed" / "metrics.json").read_text())
    for split in ("val", "test"):
        assert a[split]["top1"] == b[split]["top1"]
        assert a[split]["cross_entropy"] == pytest.approx(b[split]["cross_entropy"], abs=1e-6)
        assert a[split]["confusion"] == b[split]["confusion"]
    rows_a = (tmp_path / "full" / "history.csv").read_text().splitlines()
    rows_b = (tmp_path / "killed" / "history.csv").read_text().splitlines()
    assert len(rows_a) == len(rows_b) == 4
    strip = lambda rows: [r.rsplit(",", 1)[0] for r in rows]  # the seconds column differs
    assert strip(rows_a) == strip(rows_b)


@pytest.mark.browser
def test_report_renders_in_chromium(short_run, tmp_path):
    assert_page_renders(Path(short_run) / "report.html", tmp_path)


def test_curate_score_then_filter(short_run, tmp_path, fashion_root):
    from lienzo import curate

    test = load_idx_split(fashion_root, "test", FASHION_MNIST_CLASSES)
    for i in range(40):
        name = FASHION_MNIST_CLASSES[int(test.labels[i])]
        folder = tmp_path / "imgs" / curate.safe_folder_name(name)  # T-shirt/top → T-shirt_top
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(test.images[i, 0].numpy()).save(folder / f"{i}.png")
    summary = curate.score(short_run, tmp_path / "imgs", tmp_path / "scores.csv", top_k=3)
    assert sum(s["count"] for s in summary.values()) == 40
    right = sum(s["top1"] * s["count"] for s in summary.values())
    assert right >= 20  # chance: 4 of 40
    with open(tmp_path / "scores.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 40 and set(rows[0]) == {"path", "true", "class1", "prob1", "class2", "prob2", "class3", "prob3"}
    # every figure against an independent computation: the network by hand on the same pixels, torch.topk
    probs = _softmax_by_hand(short_run, test.images[:40])
    top3 = probs.topk(3, dim=1)
    for row in rows:
        i = int(Path(row["path"]).stem)
        assert [row[f"class{k}"] for k in (1, 2, 3)] == [FASHION_MNIST_CLASSES[c] for c in top3.indices[i].tolist()]
        assert [float(row[f"prob{k}"]) for k in (1, 2, 3)] == pytest.approx(top3.values[i].tolist(), abs=1e-5)
    labels = test.labels[:40]
    for c, name in enumerate(FASHION_MNIST_CLASSES):
        mine = labels == c
        if not mine.any():
            assert name not in summary
            continue
        assert summary[name]["count"] == int(mine.sum())
        assert summary[name]["top1"] == pytest.approx(float((top3.indices[mine, 0] == c).double().mean()), abs=1e-9)
        assert summary[name]["top3"] == pytest.approx(float((top3.indices[mine] == c).any(1).double().mean()), abs=1e-9)
    assert any(s["top3"] > s["top1"] for s in summary.values())  # top-3 is not top-1 under another name
    confident = sum(float(r["prob1"]) >= 0.75 for r in rows)
    kept = curate.filter_scored(tmp_path / "scores.csv", tmp_path / "kept", min_prob=0.75)
    assert sum(kept.values()) == confident


def test_illustration_study_small(short_run, tmp_path, capsys):
    """The three transfer steps end to end on a small labelled part and test sample of the drawings."""
    import h5py

    out = tmp_path / "study"
    assert main(["study", "illustration", "--source", str(short_run), "--out", str(out), "--labelled-per-class", "10",
                 "--finetune-epochs", "2", "--max-test", "300", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    study = json.loads((out / "study.json").read_text())
    rows = {r["step"]: r for r in study["rows"]}
    assert list(rows) == ["0", "1", "2", "3a", "3b", "ref"]
    assert rows["0"]["top1"] == json.loads((Path(short_run) / "metrics.json").read_text())["test"]["top1"]
    assert all(rows[s]["count"] == 300 for s in ("1", "2", "3a", "3b", "ref"))
    with h5py.File(out / "target.h5") as f:
        assert f["train/images"].shape == (100, 28, 28, 3) and f["test/images"].shape == (300, 28, 28, 3)
        assert np.bincount(f["train/labels"][()]).tolist() == [10] * 10
    # the drawings are another domain: the photo network's softmax falls far on them
    assert rows["1"]["top1"] < rows["0"]["top1"] - 0.3
    assert rows["2"]["top1"] > 0.25 and rows["2"]["svm"]["kernel"] in ("linear", "rbf", "poly", "sigmoid")
    # step 1 by hand: the source network on the drawings of target.h5, made grey by PIL as lienzo reads them
    with h5py.File(out / "target.h5") as f:
        drawings, truth = f["test/images"][()], torch.as_tensor(f["test/labels"][()]).long()
    grey = torch.from_numpy(np.stack([np.asarray(Image.fromarray(d).convert("L")) for d in drawings]))
    ranked = _softmax_by_hand(short_run, grey).argsort(1, descending=True)
    assert rows["1"]["top1"] == pytest.approx(float((ranked[:, 0] == truth).double().mean()), abs=1e-9)
    assert rows["1"]["top5"] == pytest.approx(float((ranked[:, :5] == truth[:, None]).any(1).double().mean()), abs=1e-9)
    # step 2 by hand: the saved SVM pipeline on the saved test features
    import joblib

    svm = joblib.load(out / "svm_source" / "svm.joblib")["pipeline"]
    with h5py.File(out / "features_source.h5") as f:
        features, feature_labels = f["test/features"][()], f["test/labels"][()]
    scores = np.argsort(-svm.decision_function(features), axis=1, kind="stable")
    assert rows["2"]["top1"] == pytest.approx(float(np.mean(scores[:, 0] == feature_labels)), abs=1e-9)
    assert rows["2"]["top5"] == pytest.approx(float(np.mean((scores[:, :5] == feature_labels[:, None]).any(1))), abs=1e-9)
    # the thesis's first finding, which these settings reproduce: a few labelled drawings and an SVM on the
    # photo network's features beat that network's own softmax on the drawings
    assert study["checks"]["svm_beats_source_softmax"] is True and "yes" in (out / "study.md").read_text()
    assert (out / "target_examples.png").is_file() and (out / "study.md").read_text() in printed
    finetuned = load_config(out / "finetuned" / "config.yaml")
    assert finetuned.model.pretrained == str(short_run) and finetuned.data.channels == 1
    assert study["settings"]["reinit"] == ["features.conv1"]  # by default the first convolution is relearnt
    assert finetuned.finetune.groups[0] == FinetuneGroup(pattern="features.conv1", lr=0.01, reinit=True)


def test_tsne_of_a_runs_features_joins_its_report(short_run, tmp_path, monkeypatch):
    from sklearn.model_selection import cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    from lienzo.tasks import config_from_dict
    from lienzo.transfer import tsne as tsne_module
    from lienzo.transfer.features import extract_features

    cfg = config_from_dict({"data": {"name": "fashion_mnist", "classes": ["Trouser", "Bag", "Sneaker"]}}).data
    h5 = extract_features(str(short_run), "penultimate", cfg, tmp_path / "three.h5", progress=False)
    plotted = {}

    def plot_embedding(points, labels, class_names, out, title):
        plotted.update(points=np.asarray(points), labels=np.asarray(labels), class_names=list(class_names))
        return original(points, labels, class_names, out, title)

    original = tsne_module.plot_embedding
    monkeypatch.setattr(tsne_module, "plot_embedding", plot_embedding)
    png = tsne_module.tsne(h5, split="test", max_points=300, into_run=True)
    assert png == Path(short_run) / "plots" / "tsne-three-test.png" and png.stat().st_size > 10_000
    assert Image.open(png).format == "PNG"
    # the map: 300 points of the three classes, which a network at 0.6+ top-1 on ten classes separates easily
    points, labels = plotted["points"], plotted["labels"]
    assert points.shape == (300, 2) and np.isfinite(points).all() and plotted["class_names"] == ["Trouser", "Bag", "Sneaker"]
    assert np.bincount(labels, minlength=3).min() > 50
    neighbours = cross_val_score(KNeighborsClassifier(5), points, labels, cv=5).mean()
    assert neighbours > 0.9  # classes lie in their own regions of the map (chance: 1/3)
    centres = np.stack([points[labels == c].mean(0) for c in range(3)])
    spread = np.mean([np.linalg.norm(points[labels == c] - centres[c], axis=1).mean() for c in range(3)])
    gaps = [np.linalg.norm(centres[a] - centres[b]) for a in range(3) for b in range(a + 1, 3)]
    assert min(gaps) > spread  # each pair of class centres lies further apart than a class's points from its centre
    page = (Path(short_run) / "report.html").read_text()
    assert "plots/tsne-three-test.png" in page and "plots/predictions.png" in page and "plots/curves.png" in page
