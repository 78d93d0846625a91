"""Retrieval metrics against hand-computed rankings and a brute-force VSE++-style loop, COCO folds, the random
baseline against its closed form and a Monte Carlo estimate; caption metrics against hand-computed BLEU and
pycocoevalcap's own scorers, METEOR's Java process and the paths where Java or SPICE's jars are missing."""

from __future__ import annotations

import math
import shutil

import numpy as np
import pytest
import torch

from lienzo.errors import ConfigError, DataError
from lienzo.metrics import language, retrieval
from lienzo.metrics.language import _tokenize, caption_metrics, metric_notes
from lienzo.metrics.retrieval import coco_folds, random_baseline, retrieval_metrics, retrieval_ranks

needs_java = pytest.mark.skipif(shutil.which("java") is None, reason="METEOR needs Java")

# 3 images × 6 captions, two captions per image; rows are images
SCORES = torch.tensor([[0.9, 0.1, 0.8, 0.2, 0.3, 0.4],
                       [0.7, 0.6, 0.5, 0.65, 0.1, 0.2],
                       [0.3, 0.9, 0.8, 0.7, 0.1, 0.6]])
CAPTION_IMAGE = torch.tensor([0, 0, 1, 1, 2, 2])


# -- retrieval: hand-computed ----------------------------------------------------------------------

def test_ranks_by_hand():
    # image 0: best own 0.9, no other caption ≥ → 0; image 1: best own 0.65, beaten by 0.7 → 1;
    # image 2: best own 0.6, beaten by 0.9, 0.8, 0.7 → 3
    image_rank, caption_rank = retrieval_ranks(SCORES, CAPTION_IMAGE)
    assert image_rank.tolist() == [0, 1, 3]
    # caption 4 (image 2, score 0.1) ties with image 1's 0.1 and loses to image 0's 0.3: pessimistic rank 2
    assert caption_rank.tolist() == [0, 2, 2, 1, 2, 0]


def test_retrieval_metrics_by_hand():
    results = retrieval_metrics(SCORES, CAPTION_IMAGE, ks=(1, 2, 5))
    expected = {"i2t_r1": 100 / 3, "i2t_r2": 200 / 3, "i2t_r5": 100.0,
                "i2t_medr": 2.0,            # median of 0-based [0, 1, 3] is 1 → 2
                "i2t_meanr": 4 / 3 + 1,
                "t2i_r1": 100 * 2 / 6, "t2i_r2": 100 * 3 / 6, "t2i_r5": 100.0,
                "t2i_medr": 2.0,            # median of [0, 0, 1, 2, 2, 2] is 1.5 → floor 1 → 2
                "t2i_meanr": 7 / 6 + 1}
    expected["rsum"] = sum(value for key, value in expected.items() if "_r" in key and key[-1].isdigit())
    assert results == pytest.approx(expected, abs=1e-9)
    assert set(results) == set(expected)


def test_ties_rank_the_right_item_below():
    # every score equal: each image's best own caption ranks below all 4 captions of the other images,
    # each caption's image below the other image
    results = retrieval_metrics(torch.ones(2, 6), torch.tensor([0, 0, 0, 1, 1, 1]), ks=(1, 5))
    assert results["i2t_r1"] == 0 and results["i2t_r5"] == 100 and results["i2t_medr"] == 4
    assert results["t2i_r1"] == 0 and results["t2i_medr"] == 2 and results["t2i_meanr"] == 2
    # a tie with another caption of the same image costs nothing: it is not a wrong item
    owners = torch.tensor([0, 0, 1])
    assert retrieval_ranks(torch.tensor([[0.5, 0.5, 0.4], [0.1, 0.1, 0.9]]), owners)[0].tolist() == [0, 0]
    # …but one with a wrong caption does: image 1's only caption ties with caption 0 of image 0
    assert retrieval_ranks(torch.tensor([[0.5, 0.5, 0.4], [0.7, 0.1, 0.7]]), owners)[0].tolist() == [0, 1]


def _vsepp_ranks(scores: np.ndarray, caption_image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """VSE++'s evaluation loops (argsort per row, min position of the image's own captions), any grouping."""
    i2t = np.array([min(np.where(np.argsort(scores[i])[::-1] == j)[0][0] for j in np.where(caption_image == i)[0])
                    for i in range(len(scores))])
    t2i = np.array([np.where(np.argsort(scores[:, j])[::-1] == caption_image[j])[0][0]
                    for j in range(scores.shape[1])])
    return i2t, t2i


def test_equals_brute_force_loop_on_random_scores(monkeypatch):
    monkeypatch.setattr(retrieval, "CHUNK_ELEMENTS", 50)  # several chunks both ways, and a ragged last one
    g = torch.Generator().manual_seed(0)
    caption_image = torch.cat([torch.arange(12), torch.randint(0, 12, (31,), generator=g)])  # 1–5 captions each
    caption_image = caption_image[torch.randperm(len(caption_image), generator=g)]
    scores = torch.randn(12, len(caption_image), generator=g, dtype=torch.float64)
    i2t, t2i = _vsepp_ranks(scores.numpy(), caption_image.numpy())
    image_rank, caption_rank = retrieval_ranks(scores, caption_image)
    assert image_rank.tolist() == i2t.tolist() and caption_rank.tolist() == t2i.tolist()
    results = retrieval_metrics(scores, caption_image)
    for way, ranks in (("i2t", i2t), ("t2i", t2i)):
        for k in (1, 5, 10):
            assert results[f"{way}_r{k}"] == pytest.approx(100.0 * np.mean(ranks < k))
        assert results[f"{way}_medr"] == np.floor(np.median(ranks)) + 1
        assert results[f"{way}_meanr"] == pytest.approx(ranks.mean() + 1)
    assert results["rsum"] == pytest.approx(sum(results[f"{w}_r{k}"] for w in ("i2t", "t2i") for k in (1, 5, 10)))


def test_bad_retrieval_inputs():
    with pytest.raises(DataError, match="image 2 has no caption"):
        retrieval_metrics(torch.rand(3, 2), torch.tensor([0, 1]))
    with pytest.raises(DataError, match="2 caption_image entries"):
        retrieval_metrics(torch.rand(2, 3), torch.tensor([0, 1]))
    with pytest.raises(DataError, match="outside 0..1"):
        retrieval_metrics(torch.rand(2, 2), torch.tensor([0, 2]))
    with pytest.raises(DataError, match="NaN"):
        retrieval_metrics(torch.tensor([[float("nan"), 0.0], [0.0, 1.0]]), torch.tensor([0, 1]))
    with pytest.raises(ConfigError, match="ks"):
        retrieval_metrics(torch.rand(2, 2), torch.tensor([0, 1]), ks=(0,))


# -- COCO folds ------------------------------------------------------------------------------------

def test_folds_are_the_mean_of_per_fold_metrics():
    g = torch.Generator().manual_seed(1)
    images, captions = torch.randn(12, 8, generator=g), torch.randn(36, 8, generator=g)
    caption_image = torch.arange(12).repeat(3)[torch.randperm(36, generator=g)]  # shuffled, 3 captions each
    calls = []

    def score_fn(im, cap):
        calls.append((len(im), len(cap)))
        return im @ cap.T

    results = coco_folds(images, captions, caption_image, score_fn, folds=3, fold_size=4)
    assert calls == [(4, 12)] * 3
    manual = []
    for fold in range(3):
        keep = (caption_image // 4) == fold
        manual.append(retrieval_metrics(images[4 * fold:4 * fold + 4] @ captions[keep].T, caption_image[keep] - 4 * fold))
    assert results == pytest.approx({key: sum(m[key] for m in manual) / 3 for key in manual[0]})
    # folds are not the whole set: the 12-image figures differ (fewer distractors per fold)
    assert results != pytest.approx(retrieval_metrics(images @ captions.T, caption_image))
    with pytest.raises(DataError, match="need 10 images, got 12"):
        coco_folds(images, captions, caption_image, score_fn, folds=2, fold_size=5)


# -- random baseline -------------------------------------------------------------------------------

def test_random_baseline_closed_form_by_hand():
    # 2 images × 2 captions: image annotation ranks 2 own among 4; P(R ≥ 1) = 2/4, P(R ≥ 2) = 2/4 · 1/3
    results = random_baseline(2, 2, ks=(1, 2, 3))
    assert results["i2t_r1"] == pytest.approx(50) and results["i2t_r2"] == pytest.approx(100 * 5 / 6)
    assert results["i2t_r3"] == 100 and results["i2t_meanr"] == pytest.approx(1 + 2 / 3) and results["i2t_medr"] == 1
    assert results["t2i_r1"] == pytest.approx(50) and results["t2i_meanr"] == pytest.approx(1.5)
    # 1000 images: R@K = K/10 % for image search, medr 500 (VSE++'s floor(median of 0..999) + 1)
    big = random_baseline(1000, 5)
    assert big["t2i_r1"] == pytest.approx(0.1) and big["t2i_r10"] == pytest.approx(1.0) and big["t2i_medr"] == 500
    assert big["i2t_meanr"] == pytest.approx(1 + 4995 / 6)                 # E[R] = wrong / (right + 1)
    assert big["i2t_r1"] == pytest.approx(0.1)                             # 5 own of 5000 captions: 0.1 %
    assert big["i2t_r5"] == pytest.approx(100 * (1 - math.prod((4995 - t) / (5000 - t) for t in range(5))))


def test_random_baseline_matches_monte_carlo():
    g = torch.Generator().manual_seed(2)
    for n_images, per_image, trials in ((5, 2, 3000), (21, 3, 300)):
        caption_image = torch.arange(n_images).repeat_interleave(per_image)
        i2t, t2i = [], []
        for _ in range(trials):
            scores = torch.rand(n_images, n_images * per_image, generator=g, dtype=torch.float64)
            image_rank, caption_rank = retrieval_ranks(scores, caption_image)
            i2t.append(image_rank)
            t2i.append(caption_rank)
        expected = random_baseline(n_images, per_image)
        for way, ranks in (("i2t", np.concatenate(i2t)), ("t2i", np.concatenate(t2i))):
            for k in (1, 5, 10):
                assert 100 * np.mean(ranks < k) == pytest.approx(expected[f"{way}_r{k}"], abs=2.0)
            assert ranks.mean() + 1 == pytest.approx(expected[f"{way}_meanr"], rel=0.03)
            if n_images == 5:  # its population medians sit ≥ 0.03 away from a CDF of 0.5: the estimate is stable
                assert np.floor(np.median(ranks)) + 1 == expected[f"{way}_medr"]


# -- caption metrics -------------------------------------------------------------------------------

REFS = {"a": ["A dog runs on the grass.", "A brown dog running across a field"],
        "b": ["Two cats sleep on a sofa", "Cats resting on the couch!"],
        "c": ["A man rides a red bicycle down the street", "A cyclist on a city road"]}
CANDS = {"a": "a dog running on the grass", "b": "two cats on a couch", "c": "a man riding a bike on the road"}


def test_tokenize_is_karpathys_and_the_readers():
    from lienzo.data.vocabulary import tokenize

    assert _tokenize("A dog, running!  On the GRASS.") == ["a", "dog", "running", "on", "the", "grass"]
    assert _tokenize("a man's hat-stand (2 of them)\n") == ["a", "mans", "hatstand", "2", "of", "them"]
    for text in ("A man's T-shirt.", "snake_case & co", "Café, crème brûlée!", "  tabs\tand\nlines "):
        assert _tokenize(text) == tokenize(text)  # generated words and references tokenised alike


def test_identical_captions_score_perfect_bleu():
    refs = {key: [texts[0]] for key, texts in REFS.items()}
    scores = caption_metrics(refs, {key: texts[0] for key, texts in refs.items()}, metrics=("bleu", "cider", "rouge"))
    for n in (1, 2, 3, 4):
        assert scores[f"bleu{n}"] == pytest.approx(1.0, abs=1e-6)
    assert scores["rouge_l"] == pytest.approx(1.0)
    assert scores["cider"] == pytest.approx(10.0)  # cosine 1 on every n-gram order, no length penalty, ×10
    assert scores["_notes"] == []


def test_bleu_by_hand_on_one_sentence():
    # clipped unigrams: "the" 3 → 2 (the reference has 2), "cat" 1: 3/4; bigrams "the the" ×2, "the cat": 1/3;
    # brevity penalty exp(1 − 6/4) since the candidate has 4 words and the reference 6
    scores = caption_metrics({0: ["the cat sat on the mat"]}, {0: "The the, THE cat!"}, metrics=("bleu",))
    penalty = math.exp(1 - 6 / 4)
    assert scores["bleu1"] == pytest.approx(0.75 * penalty, rel=1e-6)
    assert scores["bleu2"] == pytest.approx(math.sqrt(0.75 / 3) * penalty, rel=1e-6)


def test_agrees_with_pycocoevalcap_called_directly():
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    gts = {key: [" ".join(_tokenize(text)) for text in texts] for key, texts in REFS.items()}
    res = {key: [" ".join(_tokenize(text))] for key, text in CANDS.items()}
    scores = caption_metrics(REFS, CANDS, metrics=("bleu", "rouge", "cider"))
    bleu = Bleu(4).compute_score(gts, res, verbose=0)[0]
    assert [scores[f"bleu{n}"] for n in (1, 2, 3, 4)] == pytest.approx(bleu, abs=1e-12)
    assert scores["rouge_l"] == pytest.approx(Rouge().compute_score(gts, res)[0], abs=1e-12)
    assert scores["cider"] == pytest.approx(Cider().compute_score(gts, res)[0], abs=1e-12)
    assert 0 < scores["bleu4"] < scores["bleu1"] < 1 and scores["cider"] > 0
    # tokenized=True takes the texts as they are: same numbers from the pre-tokenised texts
    again = caption_metrics(gts, {key: value[0] for key, value in res.items()}, metrics=("bleu", "rouge", "cider"),
                            tokenized=True)
    assert again.pop("_notes") == scores.pop("_notes") == []
    assert again == pytest.approx(scores, abs=1e-12)


@needs_java
def test_meteor_runs_and_its_java_process_is_ended(monkeypatch):
    ended = []
    original = language._end
    monkeypatch.setattr(language, "_end", lambda process: ended.append(process) or original(process))
    scores = caption_metrics(REFS, CANDS, metrics=("meteor",))
    assert len(ended) == 1 and ended[0].returncode is not None  # reaped before caption_metrics returned
    assert scores["_notes"] == []
    # pycocoevalcap's Meteor().compute_score on the tokenised texts gives 0.3621469312837976 (per image 0.9,
    # 0.364, 0.246): pinned here rather than recomputed, since each Meteor start costs a 6 s JVM
    assert scores["meteor"] == pytest.approx(0.3621469312837976, abs=1e-9)


def test_without_java_meteor_and_spice_are_none_with_a_note(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name, *args, **kwargs: None)
    scores = caption_metrics(REFS, CANDS, metrics=("bleu", "meteor", "spice"))
    assert scores["meteor"] is None and scores["spice"] is None and scores["bleu4"] > 0
    assert len(scores["_notes"]) == 2 and all("Java was not found" in note for note in scores["_notes"])
    assert [note.split(":")[0] for note in metric_notes()] == ["METEOR", "SPICE"]


def test_spice_without_its_jars_is_none_and_never_downloads(monkeypatch, tmp_path):
    import pycocoevalcap.spice.get_stanford_models as downloader

    monkeypatch.setattr(language, "_spice_lib", lambda: tmp_path)
    monkeypatch.setattr(shutil, "which", lambda name, *args, **kwargs: "/usr/bin/java")
    monkeypatch.setattr(downloader, "urlretrieve", lambda *a, **k: pytest.fail("SPICE tried to download"))
    scores = caption_metrics(REFS, CANDS, metrics=("spice",))
    assert scores["spice"] is None
    assert scores["_notes"] == metric_notes() and "stanford-corenlp-3.6.0.jar" in scores["_notes"][0]
    assert str(tmp_path) in scores["_notes"][0]


def test_spice_with_its_jars_is_computed(monkeypatch, tmp_path):
    import pycocoevalcap.spice.spice as spice_module

    for name in language.CORENLP_JARS:
        (tmp_path / name).write_bytes(b"")
    seen = {}

    class FakeSpice:  # the real one needs Java 8 and 2 GB of CoreNLP models
        def compute_score(self, gts, res):
            seen.update(gts=gts, res=res)
            return np.float64(0.25), []

    monkeypatch.setattr(language, "_spice_lib", lambda: tmp_path)
    monkeypatch.setattr(shutil, "which", lambda name, *args, **kwargs: "/usr/bin/java")
    monkeypatch.setattr(spice_module, "Spice", FakeSpice)
    scores = caption_metrics(REFS, CANDS, metrics=("spice",))
    assert scores == {"spice": 0.25, "_notes": []} and type(scores["spice"]) is float
    assert seen["res"]["b"] == ["two cats on a couch"] and seen["gts"]["b"][1] == "cats resting on the couch"


def test_an_empty_candidate_is_scored_not_refused():
    full = caption_metrics(REFS, CANDS, metrics=("bleu", "cider"))
    scores = caption_metrics(REFS, {**CANDS, "a": "..."}, metrics=("bleu", "cider"))
    assert 0 < scores["cider"] < full["cider"] and scores["bleu1"] < full["bleu1"]


def test_bad_caption_inputs():
    with pytest.raises(DataError, match="id 'c' missing from the candidates"):
        caption_metrics(REFS, {"a": "a dog", "b": "a cat"})
    with pytest.raises(DataError, match="id 'z' missing from the references"):
        caption_metrics(REFS, {**CANDS, "z": "a dog"})
    with pytest.raises(DataError, match="no candidate captions"):
        caption_metrics(REFS, {})
    with pytest.raises(DataError, match="id 'a' must be a non-empty list"):
        caption_metrics({**REFS, "a": "a dog runs"}, CANDS)
    with pytest.raises(DataError, match="id 'b' has no words"):
        caption_metrics({**REFS, "b": ["two cats", "?!"]}, CANDS)
    with pytest.raises(ConfigError, match="did you mean cider"):
        caption_metrics(REFS, CANDS, metrics=("ciderd",))
