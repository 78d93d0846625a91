"""`lienzo tsne`: a 2-D map of deep features coloured by class (PCA first for large dimensions)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE

from lienzo.errors import ConfigError, RunError
from lienzo.report.plots import plot_embedding
from lienzo.transfer.features import read_features


def tsne_map(features: np.ndarray, pca_dims: int = 50, perplexity: float = 30.0, seed: int = 0) -> np.ndarray:
    """N×D features → N×2 map (PCA to `pca_dims` first when D is larger; perplexity capped for few points)."""
    x = features.astype(np.float32)
    if x.shape[1] > pca_dims and len(x) > pca_dims:
        x = PCA(pca_dims, random_state=seed).fit_transform(x)
    perplexity = min(perplexity, max(2.0, (len(x) - 1) / 3))
    return TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x)


def tsne(features_path: str | Path, out: str | Path | None = None, split: str = "train", max_points: int = 3000,
         seed: int = 0, into_run: bool = False) -> Path:
    """t-SNE of (a seeded random sample of at most max_points of) one split, as a PNG; returns its path.

    The PNG goes to `out`, by default next to the features file (`<features>.<split>.tsne.png`). With
    `into_run`, it goes into the plots of the lienzo run whose network made the features instead, and that
    run's report.html is drawn again to show it."""
    data = read_features(features_path, split)
    run = _source_run(data.attrs) if into_run else None
    if into_run:
        if out is not None:
            raise ConfigError("tsne: give either an output file or into_run, not both")
        if run is None:
            raise RunError(f"{features_path}: its features were not made by a lienzo run's network, so there is "
                           "no run to put the map into")
        out = run / "plots" / f"tsne-{Path(features_path).stem}-{split}.png"
    index = np.arange(len(data.labels))
    if len(index) > max_points:
        index = np.random.default_rng(seed).choice(index, max_points, replace=False)
    points = tsne_map(data.features[index], seed=seed)
    out = Path(out) if out else Path(features_path).with_suffix(f".{split}.tsne.png")
    title = f"t-SNE of {data.attrs.get('backbone', '?')} {data.attrs.get('layer', '?')} features ({split}, {len(index)} images)"
    path = plot_embedding(points, data.labels[index], data.class_names, out, title)
    if run is not None and (run / "metrics.json").is_file():
        from lienzo.evaluate import refresh_report  # the run's task makes its page: this verb sits above the spine

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
