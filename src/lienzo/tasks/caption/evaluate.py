"""What a caption run is measured by and shows: retrieval R@K both ways, language metrics of generated
captions, and the report's tables of test images with their captions and retrieved sentences.

    results = evaluate_split(module, data, "test", cfg)       # lienzo.tasks.caption's Task.evaluate
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from PIL import Image

from lienzo.report import content
from lienzo.report.content import Lines, Numbered, Report, ReportSection, Table, Text
from lienzo.runs import atomic_write_text

EXAMPLES = 8  # test images shown in the report
QUERIES = 4  # test sentences whose retrieved images are shown
TOP = 5
COCO_5K = 5000  # a test split this large also gets COCO's 1K protocol (mean of 5 folds of 1,000 images)


@torch.no_grad()
def embed_split(module, data, split: str):
    """(image embeddings, sentence embeddings, caption → image position) of a whole split."""
    images, sentences, owners = [], [], []
    module.eval()
    device = module.device
    for feats, positions, tokens, lengths, owner in data.images_loader(split):
        feats = module.encode(feats)
        images.append(module.model.embed_images(feats).float().cpu())
        sentences.append(module.model.embed_sentences(tokens.to(device), lengths.to(device)).float().cpu())
        owners.append(positions[owner])
    return torch.cat(images), torch.cat(sentences), torch.cat(owners)


@torch.no_grad()
def generate_split(module, data, split: str, beam: int | None = None) -> list[list[str]]:
    """Generated captions (word lists) of every image of a split, in order."""
    module.eval()
    words: list[list[str]] = []
    for feats, *_ in data.images_loader(split):
        words += module.generate(module.encode(feats), beam=beam)
    return words


def evaluate_split(module, data, split: str, cfg) -> dict:
    """The split's metrics (retrieval or language), with "_examples" for the report."""
    from lienzo.hardware import resolve_accelerator

    part = data.splits[split]
    facts = {"images": len(part), "captions": len(part.tokens)}
    if resolve_accelerator(cfg.trainer.accelerator) == "gpu":
        module.to("cuda")  # COCO's 5,000 test images and their beams belong on the GPU when there is one
    if cfg.caption.model == "rank":
        from lienzo.metrics.retrieval import coco_folds, retrieval_metrics

        images, sentences, owners = embed_split(module, data, split)
        scores = module.model.similarity(images, sentences).float()
        results = {**retrieval_metrics(scores, owners), **facts}
        if len(part) == COCO_5K:  # Karpathy's COCO test split
            folds = coco_folds(images, sentences, owners, module.model.similarity)
            results.update({f"coco1k_{k}": v for k, v in folds.items()})
        results["_examples"] = retrieval_examples(scores, owners, part)
        return results
    from lienzo.metrics.language import caption_metrics

    beam = cfg.caption.beam
    words = generate_split(module, data, split, beam)
    refs = {str(i): part.references[i] for i in range(len(part))}
    cands = {str(i): " ".join(w) or "<empty>" for i, w in enumerate(words)}
    scores = caption_metrics(refs, cands)
    results = {k: v for k, v in scores.items() if not k.startswith("_")}
    if scores.get("_notes"):
        results["notes"] = list(scores["_notes"])  # why a metric is missing (METEOR without Java, SPICE's jars)
    results.update(facts, beam=beam, length_penalty=cfg.caption.length_penalty,
                   unique_captions=len(set(cands.values())))
    results["_examples"] = [{"file": part.files[i], "references": part.references[i], "generated": cands[str(i)]}
                            for i in range(min(EXAMPLES, len(part)))]
    return results


def retrieval_examples(scores: torch.Tensor, owners: torch.Tensor, part) -> dict:
    """The top sentences for the first test images, and the top images for a few test sentences."""
    sentences = [s for refs in part.references for s in refs]
    annotate = []
    for i in range(min(EXAMPLES, scores.shape[0])):
        top = scores[i].topk(min(TOP, scores.shape[1])).indices.tolist()
        annotate.append({"file": part.files[i], "references": part.references[i],
                         "retrieved": [{"sentence": sentences[j], "right": int(owners[j]) == i} for j in top]})
    search = []
    step = max(1, len(sentences) // QUERIES)
    for j in list(range(0, len(sentences), step))[:QUERIES]:
        top = scores[:, j].topk(min(TOP, scores.shape[0])).indices.tolist()
        search.append({"sentence": sentences[j], "retrieved": [{"file": part.files[i], "right": i == int(owners[j])}
                                                                for i in top]})
    return {"annotate": annotate, "search": search}


# -- report --------------------------------------------------------------------------------------------

def report_sections(run_dir: Path, cfg, metrics: dict, extras: dict | None) -> Report:
    split = "test" if metrics.get("test") else "val"
    test = metrics.get(split) or {}
    examples = _examples(run_dir, extras, split)
    root = Path(cfg.data.root) if cfg.data.root else Path(cfg.data.captions or ".").parent
    subtitle = f"{cfg.caption.model} on {cfg.caption.backbone} {cfg.caption.layer} features, {cfg.data.captions}"
    if not test:
        return Report(subtitle=subtitle + " (no test or validation split to score)")
    if cfg.caption.model == "rank":
        cards = [("image→text R@1", f"{test['i2t_r1']:.1f}"), ("text→image R@1", f"{test['t2i_r1']:.1f}"),
                 ("R sum", f"{test['rsum']:.1f}")]
        rows = [[direction] + [f"{test[f'{key}_r{k}']:.1f}" for k in (1, 5, 10)] + [f"{test[f'{key}_medr']:.0f}"]
                for direction, key in (("image annotation (image→text)", "i2t"), ("image search (text→image)", "t2i"))]
        head = ReportSection(f"Retrieval on the {split} split", table=Table(["", "R@1", "R@5", "R@10", "median rank"], rows),
                             text=[f"{test['images']} images, {test['captions']} captions."])
        sections = _retrieval_sections(run_dir, root, examples, split)
    else:
        shown = [k for k in ("bleu1", "bleu2", "bleu3", "bleu4", "meteor", "rouge_l", "cider", "spice") if k in test]
        cards = [(k.upper() if k != "rouge_l" else "ROUGE-L", f"{test[k]:.3f}") for k in ("bleu4", "cider")
                 if test.get(k) is not None]
        head = ReportSection(f"Generated captions on the {split} split",
                             table=Table(shown, [["–" if test[k] is None else f"{test[k]:.3f}" for k in shown]]),
                             text=[f"beam {test.get('beam')}, {test.get('images')} images, "
                                   f"{test.get('unique_captions')} distinct captions."])
        sections = _generation_sections(run_dir, root, examples, split)
    return Report(subtitle=subtitle, cards=cards, headline=head, sections=sections)


def _examples(run_dir: Path, extras: dict | None, split: str):
    """The examples of fresh results, kept beside the plots so a re-drawn page shows them too."""
    path = run_dir / "plots" / "caption_examples.json"
    found = (extras or {}).get(split, {}).get("_examples")
    if found is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(found, indent=1))
        return found
    return json.loads(path.read_text()) if path.is_file() else None


def thumbnail_name(file: str) -> str:
    """The name of an example image's small copy under <run>/plots/examples/."""
    return file.replace("/", "_").rsplit(".", 1)[0] + ".png"


def _thumbnail(run_dir: Path, root: Path, file: str, size: int = 128) -> content.Image | Text:
    """A test image, copied small into plots/examples/ (the page needs no data folder); its name in
    italics when it cannot be read."""
    out = run_dir / "plots" / "examples" / thumbnail_name(file)
    if not out.is_file():
        try:
            with Image.open(root / file) as image:
                image = image.convert("RGB")
                image.thumbnail((size, size))
                out.parent.mkdir(parents=True, exist_ok=True)
                tmp = out.with_name(f".{out.name}.tmp")
                image.save(tmp, format="PNG")
                os.replace(tmp, out)
        except OSError:
            return Text(file, "i")
    return content.Image(f"plots/examples/{out.name}", file, size)


def _mark(text: str, right: bool) -> str | Text:
    return Text(f"✓ {text}") if right else text


def _retrieval_sections(run_dir: Path, root: Path, examples, split: str) -> list[ReportSection]:
    if not examples:
        return []
    rows = [[_thumbnail(run_dir, root, e["file"]), Lines(e["references"]),
             Numbered([_mark(r["sentence"], r["right"]) for r in e["retrieved"]])] for e in examples["annotate"]]
    annotate = ReportSection(f"Image annotation: the {split} images' top sentences (✓ = one of its own)",
                             table=Table(["image", "its captions", "top sentences"], rows))
    rows = [[q["sentence"], _spaced([[_thumbnail(run_dir, root, r["file"], 96), "✓" if r["right"] else ""]
                                     for r in q["retrieved"]])] for q in examples["search"]]
    search = ReportSection(f"Image search: the top images for {split} sentences (✓ = its own image)",
                           table=Table(["sentence", "top images"], rows))
    return [annotate, search]


def _spaced(parts: list) -> list:
    """Parts one after the other with a space between them."""
    return [piece for i, part in enumerate(parts) for piece in ([" "] if i else []) + [part]]


def _generation_sections(run_dir: Path, root: Path, examples, split: str) -> list[ReportSection]:
    if not examples:
        return []
    rows = [[_thumbnail(run_dir, root, e["file"]), Text(e["generated"]), Lines(e["references"])] for e in examples]
    return [ReportSection(f"{split.capitalize()} images: generated caption and the human ones",
                          table=Table(["image", "generated", "ground truth"], rows))]
