"""`lienzo tsne`: a 2-D map of deep features coloured by class (PCA first for large dimensions)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE

from ..report.plots import plot_embedding
from .features import read_features


def tsne_map(features: np.ndarray, pca_dims: int = 50, perplexity: float = 30.0, seed: int = 0) -> np.ndarray:
    x = features.astype(np.float32)
    if x.shape[1] > pca_dims and len(x) > pca_dims:
        x = PCA(pca_dims, random_state=seed).fit_transform(x)
    perplexity = min(perplexity, max(2.0, (len(x) - 1) / 3))
    return TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x)


def tsne(features_path: str | Path, out: str | Path | None = None, split: str = "train", max_points: int = 3000,
         seed: int = 0) -> Path:
    """t-SNE of (a stratified sample of at most max_points of) one split; the PNG path is returned."""
    data = read_features(features_path, split)
    index = np.arange(len(data.labels))
    if len(index) > max_points:
        index = np.random.default_rng(seed).choice(index, max_points, replace=False)
    points = tsne_map(data.features[index], seed=seed)
    run = _source_run(data.attrs)
    if out is None and run is not None:  # features of a lienzo run's network: the map joins that run's report
        out = run / "plots" / f"tsne-{Path(features_path).stem}-{split}.png"
    out = Path(out) if out else Path(features_path).with_suffix(f".{split}.tsne.png")
    title = f"t-SNE of {data.attrs.get('backbone', '?')} {data.attrs.get('layer', '?')} features ({split}, {len(index)} images)"
    path = plot_embedding(points, data.labels[index], data.class_names, out, title)
    if run is not None and path.parent == run / "plots" and (run / "metrics.json").is_file():
        from ..report import refresh_report

        refresh_report(run)
    return path


def _source_run(attrs: dict) -> Path | None:
    """The lienzo run folder the features' network came from, when it did."""
    try:
        spec = json.loads(attrs.get("spec") or "{}")
    except (TypeError, ValueError):
        return None
    folder = Path(spec.get("backbone") or "")
    return folder if spec.get("backbone") and (folder / "config.yaml").is_file() else None
