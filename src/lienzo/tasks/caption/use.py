"""`lienzo caption`: use a trained caption run on new images and sentences.

    describe("runs/flickr8k_showtell", ["dog.jpg", "beach.png"], beam=3)   # [{"path", "caption"} | {"path", "error"}]
    search("runs/flickr8k_vgg16_rank", "a dog runs on the grass", images="photos/", top_k=5)
    annotate("runs/flickr8k_vgg16_rank", "dog.jpg", sentences="sentences.txt", top_k=5)

Images go through the run's own feature network (its backbone, weights and layer), so any size or mode
works; `search` also takes a features file the caption task cached (`cache/features/*.h5`) instead of a folder.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from lienzo.data.vocabulary import tokenize
from lienzo.data.images import IMAGE_SUFFIXES
from lienzo.errors import ConfigError, DataError, RunError
from lienzo.evaluate import load_run
from lienzo.tasks.caption import GENERATORS, check_caption_run


class CaptionRun:
    """A caption run with the feature network it was trained on, loaded once for many queries."""

    def __init__(self, run: str | Path):
        self.loaded = load_run(run, "best")
        check_caption_run(self.loaded, "lienzo caption")
        self.module = self.loaded.module.eval()
        self.cfg = self.loaded.config
        self._runner = None

    @property
    def kind(self) -> str:
        return self.cfg.caption.model

    def need(self, kinds: tuple[str, ...], verb: str) -> None:
        if self.kind not in kinds:
            raise RunError(f"{self.loaded.path.parent.parent}: caption {verb} needs a {' or '.join(kinds)} run; "
                           f"this one is {self.kind}")

    @property
    def runner(self):
        if self._runner is None:
            from lienzo.transfer.backbones import load_backbone
            from lienzo.transfer.features import FeatureRunner

            c = self.cfg.caption
            if c.features:
                raise RunError(f"{self.loaded.path.parent.parent}: trained on a given features file (caption.features="
                               f"{c.features}), so lienzo has no network to compute features of new images; search "
                               "a features file of the same kind instead (--images FILE.h5)")
            if self.module.encoder is not None:  # fine-tuned: the run's own copy of the network
                net = replace(self.module.encoder.backbone, model=self.module.encoder.model)
            else:
                backbone = self.loaded.info.get("backbone") or c.backbone
                weights = self.loaded.info.get("weights", c.weights)
                net = load_backbone(backbone, None if weights in (None, "None") else weights)
            self._runner = FeatureRunner(net, self.loaded.info.get("layer") or c.layer, precision="32")
        return self._runner

    def image_features(self, paths: list[Path]) -> tuple[torch.Tensor | None, list[int], dict[int, str]]:
        """(features of the readable images as the model takes them, their positions, {position: error})."""
        chunks, kept, errors = [], [], {}
        for feats, index, bad in self.runner.files(paths, workers=0):
            errors.update({i: err for i, err in bad})
            if feats is not None:
                chunks.append(self.module.prepare(torch.from_numpy(feats)))
                kept += index.tolist()
        return (torch.cat(chunks) if chunks else None), kept, errors

    def sentence_embeddings(self, sentences: list[str]) -> torch.Tensor:
        from lienzo.data.vocabulary import encode_captions

        vocab = self.module.vocab
        words = [tokenize(s) for s in sentences]
        unknown = [s for s, w in zip(sentences, words) if not any(vocab.index(t) != vocab.unk_id for t in w)]
        if len(unknown) == len(sentences):
            raise DataError(f"no word of {unknown[0]!r} is in the run's vocabulary ({len(vocab)} words, e.g. "
                            f"{', '.join(vocab.words[4:9])})")
        tokens, lengths, _ = encode_captions(vocab, words, self.cfg.caption.max_length)
        with torch.no_grad():
            return self.module.model.embed_sentences(tokens, lengths).float()

    def image_embeddings(self, feats: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.module.model.embed_images(feats).float()


def describe(run: str | Path, images: list[str | Path], beam: int | None = None) -> list[dict]:
    """A generated caption for each image ({"path", "caption"}), or {"path", "error"} for a file that could not be read."""
    if beam is not None and beam < 1:
        raise ConfigError(f"--beam: must be at least 1, got {beam}")
    cap = CaptionRun(run)
    cap.need(GENERATORS, "describe")
    paths = [Path(p) for p in images]
    feats, kept, errors = cap.image_features(paths)
    captions = [words for chunk in (feats.split(256) if feats is not None else [])
                for words in cap.module.generate(chunk, beam=beam)]  # a chunk's beams at a time: bounded memory
    out: dict[int, dict] = {i: {"path": str(paths[i]), "error": err} for i, err in errors.items()}
    out.update({i: {"path": str(paths[i]), "caption": " ".join(words)} for i, words in zip(kept, captions)})
    return [out[i] for i in range(len(paths))]


def _image_files(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise DataError(f"{folder}: no image files ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return files


def search(run: str | Path, sentence: str, images: str | Path, top_k: int = 5) -> list[dict]:
    """Images (a folder, or a caption features file of the same backbone and layer) ranked by a sentence:
    the top_k as {"path", "score"}, best first."""
    if not tokenize(sentence):
        raise ConfigError("the sentence has no words")
    cap = CaptionRun(run)
    cap.need(("rank",), "search")
    query = cap.sentence_embeddings([sentence])  # an unknown sentence is said before any image is read
    images = Path(images)
    if images.is_dir():
        files = _image_files(images)
        feats, kept, errors = cap.image_features(files)
        if feats is None:
            raise DataError(f"{images}: no image could be read ({next(iter(errors.values()))})")
        names = [str(files[i]) for i in kept]
    elif images.is_file():
        from lienzo.tasks.caption.data import check_same_network, read_image_features

        if cap.module.encoder is not None:
            raise DataError(f"{images}: this run fine-tuned its image network, so features computed before are not "
                            "its own; give a folder of images (--images FOLDER)")
        found = read_image_features(images)
        check_same_network(found, cap.loaded.info)
        names = sorted(found.rows, key=found.rows.get)  # paths relative to the images folder it was made from
        feats = cap.module.prepare(found.features[[found.rows[n] for n in names]])
    else:
        raise DataError(f"{images}: neither an image folder nor a features file")
    scores = cap.module.model.similarity(cap.image_embeddings(feats), query)[:, 0]
    top = scores.topk(min(top_k, len(scores)))
    return [{"path": names[i], "score": float(s)} for s, i in zip(top.values.tolist(), top.indices.tolist())]


def annotate(run: str | Path, image: str | Path, sentences: str | Path, top_k: int = 5) -> list[dict]:
    """Sentences (a text file, one per line) ranked for an image: the top_k as {"sentence", "score"}, best first."""
    path = Path(sentences)
    if not path.is_file():
        raise DataError(f"{path}: no such file (one sentence per line)")
    lines = [line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    if not lines:
        raise DataError(f"{path}: no sentences")
    cap = CaptionRun(run)
    cap.need(("rank",), "annotate")
    embedded = cap.sentence_embeddings(lines)
    feats, _, errors = cap.image_features([Path(image)])
    if feats is None:
        raise DataError(next(iter(errors.values())))
    scores = cap.module.model.similarity(cap.image_embeddings(feats), embedded)[0]
    top = scores.topk(min(top_k, len(lines)))
    return [{"sentence": lines[i], "score": float(s)} for s, i in zip(top.values.tolist(), top.indices.tolist())]
