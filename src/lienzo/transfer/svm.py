"""`lienzo svm fit` / `lienzo svm evaluate`: an SVM on deep features, chosen by cross-validation.

    model_dir = fit_svm("feats.h5", "runs/svm")            # GridSearchCV over kernel, C, gamma
    metrics, path = evaluate_svm(model_dir, "feats.h5")    # the classify metrics.json schema

The model folder holds `svm.joblib` (the fitted scikit-learn Pipeline and what it was fitted on),
`params.json` (chosen parameters, CV score, backbone, layer, dimension, class names) and `cv_results.csv`
(the whole grid). Top-1/top-5 come from ranking the one-vs-rest decision values; cross-entropy only when
the SVM has probabilities.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import tempfile
from pathlib import Path

import joblib
import numpy as np
import torch
from sklearn.calibration import CalibratedClassifierCV
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, LinearSVC

from lienzo.errors import DataError, ModelError
from lienzo.metrics.classification import classification_metrics
from lienzo.runs import atomic_write_text, new_run_dir, unique_path, write_json
from lienzo.transfer.features import read_features

log = logging.getLogger("lienzo")

KERNELS = ("linear", "rbf", "poly", "sigmoid")
DEFAULT_C = (0.01, 0.1, 1.0, 10.0, 100.0)
DEFAULT_GAMMA = ("scale", 1e-4, 1e-3, 1e-2)
MODEL_FILE, PARAMS_FILE, CV_FILE = "svm.joblib", "params.json", "cv_results.csv"
_IDENTITY = ("backbone", "layer", "module", "weights", "spec", "preprocessing", "dim")


def param_grid(kernels=KERNELS, C=DEFAULT_C, gamma=DEFAULT_GAMMA, linear_svc: bool = False) -> list[dict]:
    if linear_svc:
        return [{"svm__C": list(C)}]
    grid = []
    for kernel in kernels:
        if kernel not in KERNELS:
            raise ModelError(f"unknown SVM kernel '{kernel}'; known: {', '.join(KERNELS)}")
        entry = {"svm__kernel": [kernel], "svm__C": list(C)}
        if kernel != "linear":
            entry["svm__gamma"] = list(gamma)
        grid.append(entry)
    return grid


def make_pipeline(standardize: bool = True, linear_svc: bool = False, seed: int = 0) -> Pipeline:
    svm = (LinearSVC(dual="auto", max_iter=20000, random_state=seed) if linear_svc
           else SVC(decision_function_shape="ovr", random_state=seed, cache_size=500))
    steps = [("scale", StandardScaler())] if standardize else []
    return Pipeline(steps + [("svm", svm)])


def fit_svm(features: str | Path, out: str | Path = "runs/svm", *, kernels=KERNELS, C=DEFAULT_C, gamma=DEFAULT_GAMMA,
            folds: int = 5, standardize: bool = True, linear_svc: bool = False, probability: bool = False,
            n_jobs: int = -1, seed: int = 0, split: str = "train", max_train: int | None = None,
            verbose: int = 0) -> Path:
    """Grid search over the SVM's kernel, C and gamma on k stratified folds; returns the model folder.

    `max_train` fits on a stratified sample of that many training features (kernel SVMs grow with n²)."""
    data = read_features(features, split)
    x, y = data.features, data.labels
    if max_train and len(y) > max_train:
        from sklearn.model_selection import train_test_split

        keep, _ = train_test_split(np.arange(len(y)), train_size=max_train, stratify=y, random_state=seed)
        x, y = x[np.sort(keep)], y[np.sort(keep)]
    present, counts = np.unique(y, return_counts=True)
    if len(y) == 0:
        raise DataError(f"{features}: the '{split}' split is empty")
    if len(present) < 2:
        raise DataError(f"{features}: the '{split}' split has one class only ({data.class_names[present[0]]}); "
                        "an SVM needs at least two")
    k = min(folds, int(counts.min()))
    if k < 2:
        rare = [data.class_names[c] for c, n in zip(present, counts) if n < 2]
        raise DataError(f"{features}: class(es) {', '.join(rare[:5])} have a single example; cross-validation needs two per class")
    if k < folds:
        log.warning("only %d examples in the smallest class: %d folds instead of %d", counts.min(), k, folds)
    search = GridSearchCV(make_pipeline(standardize, linear_svc, seed),
                          param_grid(kernels, C, gamma, linear_svc), cv=StratifiedKFold(k, shuffle=True, random_state=seed),
                          n_jobs=n_jobs, refit=True, verbose=verbose, error_score="raise")
    search.fit(x, y)
    calibrated = None
    if probability:  # Platt scaling of the chosen SVM on the same folds, for predict_proba
        calibrated = CalibratedClassifierCV(search.best_estimator_, cv=StratifiedKFold(k, shuffle=True, random_state=seed),
                                            ensemble=False).fit(x, y)
    out_dir = new_run_dir(Path(out).parent, Path(out).name)
    identity = {key: _plain(data.attrs.get(key)) for key in _IDENTITY}
    identity["dim"] = int(x.shape[1])
    best = {k.removeprefix("svm__"): _plain(v) for k, v in search.best_params_.items()}
    params = {"best_params": best, "cv_score": float(search.best_score_), "folds": k, "standardize": standardize,
              "linear_svc": linear_svc, "probability": probability, "train_count": int(len(y)), "max_train": max_train,
              "class_names": data.class_names, "features": str(features), **identity}
    _atomic_dump({"pipeline": search.best_estimator_, "calibrated": calibrated, **params}, out_dir / MODEL_FILE)
    write_json(out_dir / PARAMS_FILE, params)
    atomic_write_text(out_dir / CV_FILE, _cv_table(search.cv_results_))
    # debug, not info: the result is what `lienzo svm fit` prints, once, on stdout
    log.debug("SVM %s, CV top-1 %.2f %% (%d folds) → %s", best, 100 * search.best_score_, k, out_dir)
    return out_dir


def load_svm(model_dir: str | Path) -> dict:
    path = Path(model_dir) / MODEL_FILE if Path(model_dir).is_dir() else Path(model_dir)
    if not path.is_file():
        raise ModelError(f"{path}: SVM model not found (made by 'lienzo svm fit')")
    try:
        model = joblib.load(path)
    except Exception as err:  # pickle raises many types on a damaged file
        raise ModelError(f"{path}: not a readable SVM model ({type(err).__name__})") from None
    if not isinstance(model, dict) or "pipeline" not in model:
        raise ModelError(f"{path}: not a lienzo SVM model")
    return model


def decision_scores(pipeline: Pipeline, x: np.ndarray) -> np.ndarray:
    """N×K one-vs-rest decision values (a binary SVM's single column becomes [-d, d])."""
    scores = pipeline.decision_function(x)
    if scores.ndim == 1:
        scores = np.stack([-scores, scores], axis=1)
    return scores


def check_compatible(model: dict, attrs: dict, dim: int, where: str) -> None:
    if model["dim"] != dim:
        raise ModelError(f"{where}: features have {dim} dimensions, the SVM was fitted on {model['dim']}")
    for key in ("backbone", "layer", "weights"):
        if model.get(key) is not None and attrs.get(key) is not None and _plain(attrs[key]) != model[key]:
            raise ModelError(f"{where}: features come from {key} '{_plain(attrs[key])}', the SVM from '{model[key]}'")


def evaluate_svm(model_dir: str | Path, features: str | Path, split: str = "test") -> tuple[dict, Path]:
    """The classify metrics for the SVM on one split of a features file; written to <model>/evaluations/."""
    model = load_svm(model_dir)
    data = read_features(features, split)
    check_compatible(model, data.attrs, data.features.shape[1], str(features))
    if data.class_names != model["class_names"]:
        raise DataError(f"{features}: class names differ from the SVM's ({len(data.class_names)} vs {len(model['class_names'])})")
    pipeline = model["pipeline"]
    scores = decision_scores(pipeline, data.features)
    result = classification_metrics(torch.from_numpy(scores).float(), torch.from_numpy(data.labels).long(),
                                    model["class_names"], cross_entropy=False)
    if model.get("probability"):
        _add_cross_entropy(result, model["calibrated"].predict_proba(data.features), data.labels, model["class_names"])
    result.update(split=split, features=str(features), best_params=model["best_params"])
    folder = Path(model_dir) if Path(model_dir).is_dir() else Path(model_dir).parent
    path = unique_path(folder / "evaluations", f"{Path(features).stem}-{split}")
    write_json(path, result)
    return result, path


def _add_cross_entropy(result: dict, probs: np.ndarray, labels: np.ndarray, class_names: list[str]) -> None:
    """Cross-entropy of calibrated probabilities, overall and per class (classes without images: None)."""
    losses = -np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, 1))
    result["cross_entropy"] = float(losses.mean())
    for c, name in enumerate(class_names):
        mine = losses[labels == c]
        result["per_class"][name]["cross_entropy"] = float(mine.mean()) if len(mine) else None


def _plain(value):
    if isinstance(value, (np.generic,)):
        return value.item()
    if isinstance(value, bytes):
        return value.decode()
    return value


def _atomic_dump(obj, path: Path) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(fd)
    try:
        joblib.dump(obj, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _cv_table(results: dict) -> str:
    keys = [k for k in results if k.startswith("param_")] + ["mean_test_score", "std_test_score", "rank_test_score",
                                                             "mean_fit_time"]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([k.removeprefix("param_svm__") for k in keys])
    for i in range(len(results["mean_test_score"])):
        writer.writerow([_plain(results[k][i]) if results[k][i] is not np.ma.masked else "" for k in keys])
    return buffer.getvalue()
