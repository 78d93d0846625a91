"""Deep features as a scikit-learn transformer, and SVM predictions on image files.

    from sklearn.pipeline import make_pipeline
    from sklearn.svm import SVC
    from lienzo.transfer import DeepFeatures

    clf = make_pipeline(DeepFeatures("vgg19", weights="IMAGENET1K_V1", layer="fc7"), SVC(kernel="linear"))
    clf.fit(train_paths, train_labels)          # X: image paths, or uint8 arrays N×H×W(×C)
    clf.predict(["drawing.png"])

`predict_svm(model_dir, images)` does what `lienzo predict` does for a model made by `lienzo svm fit`:
the images go through the backbone and layer the SVM's features came from, then the SVM.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin

from lienzo.errors import DataError, ModelError


def _as_images(x) -> torch.Tensor:
    """uint8 N×H×W, N×H×W×C (numpy's layout) or N×C×H×W (a tensor) → uint8 N×C×H×W."""
    if isinstance(x, torch.Tensor):
        t = x
        if t.ndim == 3:
            t = t[:, None]
    else:
        a = np.asarray(x)
        if a.ndim == 3:
            a = a[..., None]
        if a.ndim != 4:
            raise DataError(f"expected images N×H×W(×C), got an array of shape {a.shape}")
        t = torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2)))
    if t.dtype != torch.uint8 or t.ndim != 4:
        raise DataError(f"expected uint8 images, got {t.dtype} {tuple(t.shape)}")
    return t


def _is_paths(x) -> bool:
    return isinstance(x, (list, tuple)) and all(isinstance(p, (str, Path)) for p in x)


class DeepFeatures(TransformerMixin, BaseEstimator):
    """A backbone's activations at `layer`: image paths or uint8 arrays in, N×D float32 features out.

    `backbone` is an architecture name (`vgg19`, `resnet50`, `timm:<name>`, ...) or a lienzo run folder; `weights`
    a local .pth/.safetensors file or a torchvision weights name in $TORCH_HOME/hub/checkpoints (never downloaded).
    Nothing is learnt in `fit`: the network is loaded there (or on first use) and is left out of pickles,
    so a fitted pipeline saved with joblib stays small and reloads the network when it is next used.
    Unreadable image files are an error here (a transformer must return one row per input)."""

    def __init__(self, backbone: str = "resnet50", weights: str | None = None, layer: str = "penultimate",
                 batch_size: int = 64, precision: str = "auto", accelerator: str = "auto", num_workers: int | None = None):
        self.backbone = backbone
        self.weights = weights
        self.layer = layer
        self.batch_size = batch_size
        self.precision = precision
        self.accelerator = accelerator
        self.num_workers = num_workers

    def _runner(self):
        if getattr(self, "_runner_", None) is None:
            from lienzo.transfer.backbones import load_backbone
            from lienzo.transfer.features import FeatureRunner

            self._runner_ = FeatureRunner(load_backbone(str(self.backbone), self.weights), self.layer,
                                          precision=self.precision, accelerator=self.accelerator)
        return self._runner_

    def fit(self, X=None, y=None):
        runner = self._runner()
        channels, h, w = runner.backbone.preprocess.channels, *runner.backbone.preprocess.output_size
        self.n_features_out_ = int(runner(torch.zeros(1, channels, h, w, dtype=torch.uint8)).shape[1])
        self.module_ = runner.extractor.target
        return self

    def transform(self, X) -> np.ndarray:
        runner = self._runner()
        if _is_paths(X):
            out = np.empty((len(X), 0), dtype=np.float32)
            rows: dict[int, np.ndarray] = {}
            for feats, index, errors in runner.files(list(X), self.batch_size, self.num_workers):
                if errors:
                    raise DataError(errors[0][1])
                rows.update(zip(index.tolist(), feats))
            if rows:
                out = np.stack([rows[i] for i in range(len(X))])
            return out
        images = _as_images(X)
        parts = [runner(images[i : i + self.batch_size]) for i in range(0, len(images), self.batch_size)]
        return np.concatenate(parts) if parts else np.empty((0, 0), dtype=np.float32)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        n = getattr(self, "n_features_out_", None)
        if n is None:
            raise ModelError("DeepFeatures is not fitted: call fit() first")
        return np.array([f"{self.layer}{i}" for i in range(n)], dtype=object)

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("_runner_", None)  # the network is reloaded from backbone/weights when next used
        return state


def predict_svm(model_dir: str | Path, images: list[str | Path], top_k: int = 5) -> list[dict]:
    """`lienzo predict` for an SVM folder: one dict per image, `{"path", "predictions": [{"class", "score"
    (the one-vs-rest decision value), "probability" (when the SVM was fitted with --probability)}]}`,
    or `{"path", "error"}` for a file that cannot be read."""
    from lienzo.transfer.svm import decision_scores, load_svm

    model = load_svm(model_dir)
    spec = json.loads(model.get("spec") or "{}")
    if not spec.get("backbone"):
        raise ModelError(f"{model_dir}: the SVM's features file does not say how to load its backbone "
                         "(made before lienzo stored it); extract the features again")
    transformer = DeepFeatures(spec["backbone"], spec.get("weights"), model["layer"])
    runner = transformer._runner()
    if runner.backbone.preprocess.to_dict() != json.loads(model["preprocessing"]):  # both plain JSON values
        raise ModelError(f"{model_dir}: the backbone {spec['backbone']} now preprocesses differently from when "
                         "the SVM's features were made")
    results: list[dict] = [{"path": str(p)} for p in images]
    feats, ok = [], []
    for x, index, errors in runner.files(list(images)):
        for i, err in errors:
            results[i]["error"] = err
        if x is not None:
            feats.append(x)
            ok += index.tolist()
    if not feats:
        return results
    x = np.concatenate(feats)
    if x.shape[1] != model["dim"]:
        raise ModelError(f"{model_dir}: the backbone gives {x.shape[1]} features, the SVM was fitted on {model['dim']}")
    scores = decision_scores(model["pipeline"], x)
    probs = model["calibrated"].predict_proba(x) if model.get("calibrated") is not None else None
    names = model["class_names"]
    k = min(top_k, scores.shape[1])
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    for row, (i, order) in enumerate(zip(ok, top)):
        results[i]["predictions"] = [
            {"class": names[c], "score": round(float(scores[row, c]), 6),
             **({"probability": round(float(probs[row, c]), 6)} if probs is not None else {})}
            for c in order
        ]
    return results
