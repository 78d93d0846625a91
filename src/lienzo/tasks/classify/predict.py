"""`lienzo predict`: predictions on image files of any size and mode, resized and normalised as in training,
by a classify run or by an SVM folder made by `lienzo svm fit`.

    results = predict("runs/fashion_fast", ["shoe.png", "shirt.jpg"], top_k=3)
    results = predict("runs/svm", ["shoe.png"])      # an SVM on a backbone's features
"""

from __future__ import annotations

from pathlib import Path

import torch

from lienzo.data.images import load_image
from lienzo.errors import DataError, RunError
from lienzo.evaluate import load_run
from lienzo.tasks.classify import run_logits


def predict(run: str | Path, images: list[str | Path], top_k: int = 5) -> list[dict]:
    """One dict per image: `{"path", "predictions": [{"class", "probability"}, ...]}`, or `{"path", "error"}`
    for a file that cannot be read (the others are still predicted).

    `run` is a classify run folder, or an SVM folder (it holds svm.joblib): then the predictions are
    `lienzo.transfer.estimators.predict_svm`'s, each with its decision value as "score"."""
    if (Path(run) / "svm.joblib").is_file():
        from lienzo.transfer.estimators import predict_svm

        return predict_svm(run, images, top_k=top_k)
    return predict_run(run, images, top_k=top_k)


def predict_run(run: str | Path, images: list[str | Path], top_k: int = 5) -> list[dict]:
    """`predict` by a classify run's best weights: one dict per image, as `predict` says."""
    loaded = load_run(run, "best")
    if loaded.task != "classify":
        raise RunError(f"{run}: predict needs a classify run, this one is a {loaded.task} run")
    channels, height, width = loaded.input_shape
    results: list[dict] = [{"path": str(p)} for p in images]
    tensors, ok = [], []
    for i, path in enumerate(images):
        try:
            tensors.append(load_image(path, channels, (height, width)))
            ok.append(i)
        except DataError as err:
            results[i]["error"] = str(err)
    if tensors:
        # the run's own precision, TTA and memory layout: the same numbers as `lienzo evaluate`
        logits = run_logits(loaded, torch.stack(tensors))
        probs = logits.softmax(1)
        k = min(top_k, probs.shape[1])
        top_p, top_i = probs.topk(k, dim=1)
        for row, i in enumerate(ok):
            results[i]["predictions"] = [
                {"class": loaded.class_names[int(c)], "probability": round(float(p), 6)}
                for p, c in zip(top_p[row], top_i[row])
            ]
    return results
