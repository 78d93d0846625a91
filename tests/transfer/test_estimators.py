"""Deep features as a scikit-learn transformer, and `lienzo predict` through backbone + SVM."""

import json
import pickle

import numpy as np
import pytest
import torch
import torchvision
from sklearn.base import clone
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from lienzo.cli import main
from lienzo.tasks import config_from_dict
from lienzo.errors import DataError, ModelError
from lienzo.transfer import DeepFeatures, predict_svm
from lienzo.transfer.features import extract_features, read_features
from lienzo.transfer.svm import decision_scores, fit_svm, load_svm
from tests.helpers import tiny_images, write_png

CLASSES = ("left", "middle", "right")


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("w") / "r18.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)
    return str(path)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """root/<class>/*.png: 5 RGB images per class whose class is a bright vertical band."""
    root = tmp_path_factory.mktemp("imgs")
    images, labels = tiny_images(15, size=48, channels=3, classes=3)
    paths = []
    for i, (image, label) in enumerate(zip(images, labels)):
        paths.append(write_png(root / CLASSES[label] / f"{i:02d}.png", image))
    return root, images, labels, paths


def test_transformer_matches_extraction_and_chains_in_a_pipeline(tmp_path, weights, folder):
    root, images, labels, _ = folder
    cfg = config_from_dict({"data": {"name": "folder", "root": str(root)}}).data
    h5 = extract_features("resnet18", "penultimate", cfg, tmp_path / "f.h5", weights=weights, progress=False,
                          precision="32")
    stored = read_features(h5, "train")
    transformer = DeepFeatures("resnet18", weights=weights, precision="32", num_workers=0).fit(stored.paths)
    assert transformer.n_features_out_ == 512 and transformer.module_ == "<pre:fc>"  # the input of the last linear layer
    from_paths = transformer.transform(stored.paths)
    assert from_paths.shape == (15, 512) and np.allclose(from_paths, stored.features, atol=1e-5)
    # uint8 arrays (N×H×W×C) give the same features up to resizing in float instead of in uint8
    order = [int(p.split("/")[-1][:2]) for p in stored.paths]
    from_arrays = transformer.transform(images[order])
    assert np.linalg.norm(from_arrays - from_paths) / np.linalg.norm(from_paths) < 0.01
    # which is because a decoded file is resized and cropped once, like an array (not twice)
    from lienzo.transfer.features import _FileImages

    preprocess = transformer._runner().backbone.preprocess
    decoded = torch.stack([_FileImages([p], [0], preprocess)[0][0] for p in stored.paths[:3]])
    as_array = preprocess(torch.from_numpy(images[order[:3]].transpose(0, 3, 1, 2).copy()))
    assert (preprocess(decoded, resized=True) - as_array).abs().max() < 0.6 / 255 / min(preprocess.std)
    assert list(transformer.get_feature_names_out()[:2]) == ["penultimate0", "penultimate1"]

    pipe = Pipeline([("features", clone(transformer)), ("scale", StandardScaler()), ("svm", SVC(kernel="linear"))])
    assert pipe.get_params()["features__layer"] == "penultimate"
    pipe.fit(stored.paths, stored.labels)
    assert (pipe.predict(stored.paths) == stored.labels).all()
    # pickles leave the network out and load it again on first use
    blob = pickle.dumps(pipe)
    assert len(blob) < 200_000
    again = pickle.loads(blob)
    assert (again.predict(stored.paths) == stored.labels).all()


def test_transformer_bad_input(weights, tmp_path):
    t = DeepFeatures("resnet18", weights=weights, precision="32", num_workers=0)
    with pytest.raises(DataError, match="uint8"):
        t.transform(np.zeros((2, 8, 8, 3), dtype=np.float32))
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(DataError, match="bad.png"):
        t.transform([str(tmp_path / "bad.png")])
    with pytest.raises(ModelError, match="not fitted"):
        DeepFeatures().get_feature_names_out()


def test_predict_through_backbone_and_svm(tmp_path, weights, folder, capsys):
    root, _, _, paths = folder
    cfg = config_from_dict({"data": {"name": "folder", "root": str(root)}}).data
    h5 = extract_features("resnet18", "penultimate", cfg, tmp_path / "f.h5", weights=weights, progress=False,
                          precision="32")
    svm_dir = fit_svm(h5, tmp_path / "svm", kernels=["linear"], C=[1.0], folds=3, probability=True)
    stored = read_features(h5, "train")
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG broken")
    results = predict_svm(svm_dir, stored.paths[:4] + [str(bad)], top_k=3)
    assert results[4] == {"path": str(bad), "error": results[4]["error"]} and "broken.png" in results[4]["error"]
    scores = decision_scores(load_svm(svm_dir)["pipeline"], stored.features[:4])
    for row, result in enumerate(results[:4]):
        preds = result["predictions"]
        assert len(preds) == 3 and preds[0]["class"] == CLASSES[int(np.argmax(scores[row]))]
        assert [p["score"] for p in preds] == sorted((p["score"] for p in preds), reverse=True)
        assert preds[0]["score"] == pytest.approx(scores[row].max(), rel=1e-3)  # batches of other sizes
        assert 0 <= preds[0]["probability"] <= 1
    # the CLI picks the SVM path from the folder; a bad file makes the exit code 3, the rest is printed
    capsys.readouterr()
    assert main(["predict", str(svm_dir), stored.paths[0], str(bad), "--json", "--top-k", "2"]) == 3
    printed = json.loads(capsys.readouterr().out)
    assert printed[0]["predictions"][0]["class"] == results[0]["predictions"][0]["class"]
    assert "error" in printed[1]


def test_readme_chain_run_features_svm_predict(tmp_path):
    """README's chain: a lienzo run's penultimate features → svm fit → predict on PNG files."""
    from lienzo import load_config, train
    from tests.helpers import write_idx_dataset

    root = write_idx_dataset(tmp_path / "idx", n_train=60, n_test=30)
    run = train(load_config(None, [f"data.root={root}", "data.name=idx", "model.arch=basenet", "data.batch_size=16",
                                   "trainer.max_epochs=1", "trainer.progress=false", "trainer.precision=32",
                                   f"run.dir={tmp_path / 'runs'}", "run.name=source"]))
    data = config_from_dict({"data": {"name": "idx", "root": str(root)}}).data
    h5 = extract_features(str(run), "penultimate", data, tmp_path / "run.h5", progress=False, precision="32")
    svm_dir = fit_svm(h5, tmp_path / "svm", kernels=["linear"], C=[1.0], folds=2, n_jobs=1)
    images, labels = tiny_images(6, size=28, classes=3, seed=5)
    paths = [str(write_png(tmp_path / "new" / f"{i}.png", image)) for i, image in enumerate(images)]
    results = predict_svm(svm_dir, paths, top_k=2)
    assert [r["path"] for r in results] == paths and all("error" not in r for r in results)
    stored = read_features(h5, "train")
    names = stored.class_names
    assert all(len(r["predictions"]) == 2 and r["predictions"][0]["class"] in names for r in results)
    # the same numbers as the SVM on features computed from the same pixels
    from lienzo.transfer.backbones import load_backbone
    from lienzo.transfer.features import FeatureRunner

    feats = FeatureRunner(load_backbone(str(run)), "penultimate", precision="32")(torch.from_numpy(images[:, None]))
    scores = decision_scores(load_svm(svm_dir)["pipeline"], feats)
    assert [r["predictions"][0]["class"] for r in results] == [names[i] for i in scores.argmax(1)]
