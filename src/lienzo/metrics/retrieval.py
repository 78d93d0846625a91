"""Image–sentence retrieval metrics: Recall@K, median and mean rank, both ways, as VSE++'s evaluation
(Faghri et al., `evaluation.py` `i2t`/`t2i`) computes them, so numbers compare with published ones.

    scores = image_emb @ caption_emb.T                      # n_images × n_captions similarities
    results = retrieval_metrics(scores, caption_image)      # caption_image[j]: the image of caption j
    results["i2t_r1"], results["t2i_medr"], results["rsum"]
    coco_1k = coco_folds(image_emb, caption_emb, caption_image, lambda im, cap: im @ cap.T)   # COCO 1K
    chance = random_baseline(1000, 5)                       # the same figures under random ranking

Image annotation (i2t) ranks all captions for each image and takes the rank of the best-ranked of the
image's own captions; image search (t2i) ranks all images for each caption. R@K is in percent, medr and
meanr are 1-based (medr = floor(median of 0-based ranks) + 1, as VSE++). Ties are counted pessimistically:
a wrong item scoring exactly as much as the right one ranks above it, so a constant scorer gets the worst
rank, not a lucky one (VSE++'s argsort breaks ties arbitrarily; with real-valued scores ties do not occur).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from lienzo.errors import ConfigError, DataError

CHUNK_ELEMENTS = 1 << 22  # scores compared per step: 4 MB of booleans at a time (5000 × 25000: ~60 MB in all)


def retrieval_metrics(scores: torch.Tensor, caption_image: torch.Tensor, ks=(1, 5, 10)) -> dict[str, float]:
    """R@K, medr and meanr for image annotation (i2t_*) and image search (t2i_*), and rsum (the sum of all R@K).

    `scores[i, j]` is the similarity of image i and caption j (higher is better); `caption_image[j]` is the
    index of caption j's image. Every image needs at least one caption."""
    ks = _check_ks(ks)
    caption_image = _check_pairs(scores, caption_image)
    image_rank, caption_rank = retrieval_ranks(scores, caption_image)
    results = {**_summary("i2t", image_rank, ks), **_summary("t2i", caption_rank, ks)}
    results["rsum"] = sum(results[f"{way}_r{k}"] for way in ("i2t", "t2i") for k in ks)
    return results


def retrieval_ranks(scores: torch.Tensor, caption_image: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """0-based ranks, ties pessimistic: per image, of its best-ranked own caption among all captions (the number
    of other images' captions scoring at least as high as its best own one); per caption, of its image among
    all images (the number of other images scoring at least as high as its own).

    One pass over row blocks of `scores`, on their device: each block is compared with two vectors (the
    image's best own score, the caption's own score), so the extra memory is one block of booleans."""
    n_images, n_captions = scores.shape
    caption_image = caption_image.to(scores.device)
    own_score = scores[caption_image, torch.arange(n_captions, device=scores.device)]  # s[image of j, j]
    best_own = torch.full((n_images,), float("-inf"), dtype=scores.dtype, device=scores.device)
    best_own = best_own.scatter_reduce(0, caption_image, own_score, reduce="amax")
    # own captions at least as high as the best own one (itself and ties): not wrong items, so not counted
    own_at_best = torch.bincount(caption_image[own_score >= best_own[caption_image]], minlength=n_images)
    image_rank, above_caption = [], torch.zeros(n_captions, dtype=torch.long, device=scores.device)
    step = max(1, CHUNK_ELEMENTS // n_captions)
    for start in range(0, n_images, step):
        block = scores[start:start + step]
        _check_finite(block)
        # int32 sums: a bool → int64 sum makes an 8-byte copy of the block, which the allocator keeps around
        above_best = (block >= best_own[start:start + step, None]).sum(dim=1, dtype=torch.int32)
        image_rank.append((above_best - own_at_best[start:start + step]).cpu())
        above_caption += (block >= own_score).sum(dim=0, dtype=torch.int32)
    return torch.cat(image_rank).numpy(), (above_caption - 1).cpu().numpy()  # - 1: its own image is ≥ itself


def coco_folds(image_feats: torch.Tensor, caption_feats: torch.Tensor, caption_image: torch.Tensor,
               score_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], folds: int = 5,
               fold_size: int = 1000) -> dict[str, float]:
    """COCO 1K: the mean of each retrieval metric over `folds` consecutive folds of `fold_size` images
    (images f·fold_size … (f+1)·fold_size − 1 and their captions), as VSE++'s `fold5`. COCO 5K is
    `retrieval_metrics(score_fn(image_feats, caption_feats), caption_image)` on all of them.

    `score_fn(images, captions)` gives the n_images × n_captions similarities of one fold."""
    if folds < 1 or fold_size < 1:
        raise ConfigError(f"coco_folds: folds and fold_size must be at least 1 (got {folds} and {fold_size})")
    if len(image_feats) != folds * fold_size:
        raise DataError(f"coco_folds: {folds} folds of {fold_size} images need {folds * fold_size} images, got "
                        f"{len(image_feats)}: pass the 5,000 COCO test images, or set folds/fold_size to match")
    if len(caption_feats) != len(caption_image):
        raise DataError(f"coco_folds: {len(caption_feats)} caption features but {len(caption_image)} "
                        f"caption_image entries: give one image index per caption")
    caption_image = torch.as_tensor(caption_image).long().cpu()
    per_fold = []
    for fold in range(folds):
        first = fold * fold_size
        in_fold = (caption_image >= first) & (caption_image < first + fold_size)
        chosen = in_fold.nonzero().squeeze(1)
        scores = score_fn(image_feats[first:first + fold_size], caption_feats[chosen.to(caption_feats.device)])
        per_fold.append(retrieval_metrics(scores, caption_image[in_fold] - first))
    return {key: float(np.mean([result[key] for result in per_fold])) for key in per_fold[0]}


def random_baseline(n_images: int, captions_per_image: int, ks=(1, 5, 10)) -> dict[str, float]:
    """Expected R@K, medr (the population median of the rank, + 1) and meanr when every ranking is a
    uniformly random permutation, with the keys of `retrieval_metrics`.

    Image search ranks one right image among n_images; image annotation waits for the first of the
    image's c own captions among N = n_images·c, whose 0-based rank R has P(R ≥ r) = C(N−c, r) / C(N, r)."""
    if n_images < 1 or captions_per_image < 1:
        raise ConfigError(f"random_baseline: n_images and captions_per_image must be at least 1 "
                          f"(got {n_images} and {captions_per_image})")
    ks = _check_ks(ks)
    results = {**_first_hit("i2t", n_images * captions_per_image, captions_per_image, ks),
               **_first_hit("t2i", n_images, 1, ks)}
    results["rsum"] = sum(results[f"{way}_r{k}"] for way in ("i2t", "t2i") for k in ks)
    return results


# -- helpers ---------------------------------------------------------------------------------------

def _summary(way: str, ranks: np.ndarray, ks: tuple[int, ...]) -> dict[str, float]:
    """VSE++'s figures from 0-based ranks (numpy's median: the mean of the two middle ranks when even)."""
    results = {f"{way}_r{k}": float(100.0 * np.mean(ranks < k)) for k in ks}
    results[f"{way}_medr"] = float(np.floor(np.median(ranks)) + 1)
    results[f"{way}_meanr"] = float(ranks.mean() + 1)
    return results


def _first_hit(way: str, total: int, right: int, ks: tuple[int, ...]) -> dict[str, float]:
    """Expected figures for the 0-based position R of the first of `right` items in a random order of `total`."""
    wrong = total - right
    r = np.arange(wrong + 1)
    # P(R ≥ r): the first r items are all wrong; ∏_{t<r} (wrong − t) / (total − t)
    survival = np.concatenate([[1.0], np.cumprod((wrong - r[:-1]) / (total - r[:-1]))])
    cdf = 1.0 - np.append(survival[1:], 0.0)  # P(R ≤ r)
    results = {f"{way}_r{k}": float(100.0 * (1.0 - survival[k])) if k <= wrong else 100.0 for k in ks}
    results[f"{way}_medr"] = float(np.argmax(cdf >= 0.5 - 1e-12) + 1)
    results[f"{way}_meanr"] = float(survival[1:].sum() + 1)  # E[R] = Σ_{r≥1} P(R ≥ r) = wrong / (right + 1)
    return results


def _check_ks(ks) -> tuple[int, ...]:
    ks = tuple(ks)
    if not ks or any(not isinstance(k, int) or isinstance(k, bool) or k < 1 for k in ks):
        raise ConfigError(f"retrieval ks must be positive whole numbers such as (1, 5, 10), got {ks}")
    return ks


def _check_pairs(scores: torch.Tensor, caption_image) -> torch.Tensor:
    """caption_image as a long tensor that fits `scores`; every image must own at least one caption."""
    if scores.ndim != 2 or 0 in scores.shape:
        raise DataError(f"retrieval scores must be a non-empty n_images × n_captions matrix, got shape "
                        f"{tuple(scores.shape)}")
    caption_image = torch.as_tensor(caption_image).long().reshape(-1)
    n_images, n_captions = scores.shape
    if len(caption_image) != n_captions:
        raise DataError(f"retrieval: {n_captions} captions in the scores but {len(caption_image)} caption_image "
                        f"entries: give one image index per caption")
    if caption_image.min() < 0 or caption_image.max() >= n_images:
        raise DataError(f"retrieval: caption_image holds image indices outside 0..{n_images - 1}")
    orphans = (torch.bincount(caption_image.cpu(), minlength=n_images) == 0).nonzero().squeeze(1)
    if len(orphans):
        raise DataError(f"retrieval: image {orphans[0].item()} has no caption ({len(orphans)} such images): "
                        f"every image in the scores needs at least one caption")
    return caption_image


def _check_finite(block: torch.Tensor) -> None:
    """NaN compares false with everything, which would silently rank it first: refuse it."""
    if torch.isnan(block).any():
        raise DataError("retrieval scores contain NaN: check the embeddings (a zero vector under cosine?)")
