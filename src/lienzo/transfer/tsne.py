"""`lienzo tsne`: a 2-D map of deep features coloured by class (PCA first for large dimensions)."""

from __future__ import annotations

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
    out = Path(out) if out else Path(features_path).with_suffix(f".{split}.tsne.png")
    title = f"t-SNE of {data.attrs.get('backbone', '?')} {data.attrs.get('layer', '?')} features ({split}, {len(index)} images)"
    return plot_embedding(points, data.labels[index], data.class_names, out, title)
