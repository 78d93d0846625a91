"""What a caption run is measured by and shows: retrieval R@K both ways, language metrics of generated
captions, and the report's tables of test images with their captions and retrieved sentences.

    results = evaluate_split(module, data, "test", cfg)       # lienzo.tasks.caption's Task.evaluate
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path

import torch
from PIL import Image

from lienzo.runs import atomic_write_text
from lienzo.tasks.base import Report, ReportSection

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
        head = ReportSection(f"Retrieval on the {split} split", html=_table(["", "R@1", "R@5", "R@10", "median rank"], rows)
                             + f"<p>{test['images']} images, {test['captions']} captions.</p>")
        sections = _retrieval_sections(run_dir, root, examples, split)
    else:
        shown = [k for k in ("bleu1", "bleu2", "bleu3", "bleu4", "meteor", "rouge_l", "cider", "spice") if k in test]
        cards = [(k.upper() if k != "rouge_l" else "ROUGE-L", f"{test[k]:.3f}") for k in ("bleu4", "cider")
                 if test.get(k) is not None]
        head = ReportSection(f"Generated captions on the {split} split",
                             html=_table(shown, [["–" if test[k] is None else f"{test[k]:.3f}" for k in shown]])
                             + f"<p>beam {test.get('beam')}, {test.get('images')} images, "
                               f"{test.get('unique_captions')} distinct captions.</p>")
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


def _thumbnail(run_dir: Path, root: Path, file: str, size: int = 128) -> str:
    """An <img> of a test image, copied small into plots/examples/ (the page needs no data folder)."""
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
            return f"<i>{html.escape(file)}</i>"
    return f"<img src='plots/examples/{html.escape(out.name)}' alt='{html.escape(file)}' width='{size}'>"


def _table(header: list[str], rows: list[list[str]]) -> str:
    from lienzo.report.layout import table

    return table(header, rows)


def _mark(text: str, right: bool) -> str:
    return f"<b>✓ {html.escape(text)}</b>" if right else html.escape(text)


def _retrieval_sections(run_dir: Path, root: Path, examples, split: str) -> list[ReportSection]:
    if not examples:
        return []
    rows = [[_thumbnail(run_dir, root, e["file"]), "<br>".join(html.escape(r) for r in e["references"]),
             "<ol>" + "".join(f"<li>{_mark(r['sentence'], r['right'])}</li>" for r in e["retrieved"]) + "</ol>"]
            for e in examples["annotate"]]
    annotate = ReportSection(f"Image annotation: the {split} images' top sentences (✓ = one of its own)",
                             html=_table(["image", "its captions", "top sentences"], rows))
    rows = [[html.escape(q["sentence"]), " ".join(
        (_thumbnail(run_dir, root, r["file"], 96) + ("✓" if r["right"] else "")) for r in q["retrieved"])]
        for q in examples["search"]]
    search = ReportSection(f"Image search: the top images for {split} sentences (✓ = its own image)",
                           html=_table(["sentence", "top images"], rows))
    return [annotate, search]


def _generation_sections(run_dir: Path, root: Path, examples, split: str) -> list[ReportSection]:
    if not examples:
        return []
    rows = [[_thumbnail(run_dir, root, e["file"]), f"<b>{html.escape(e['generated'])}</b>",
             "<br>".join(html.escape(r) for r in e["references"])] for e in examples]
    return [ReportSection(f"{split.capitalize()} images: generated caption and the human ones",
                          html=_table(["image", "generated", "ground truth"], rows))]
