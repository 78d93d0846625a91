"""Caption metrics (BLEU-1..4, METEOR, ROUGE-L, CIDEr-D, SPICE) by `pycocoevalcap`, the COCO caption
evaluation's own scorers, so the numbers compare with published ones.

    refs = {"img1": ["A dog runs on the grass.", "A brown dog running"], "img2": ["Two cats on a sofa"]}
    scores = caption_metrics(refs, {"img1": "a dog running on grass", "img2": "two cats sleeping"})
    scores["bleu4"], scores["cider"], scores["meteor"]      # floats; None when a metric cannot run here
    scores["_notes"]                                        # why any requested metric is None
    metric_notes()                                          # the same reasons, for a report

Texts are tokenised here by Karpathy's rules, those of `lienzo.data.captions.tokenize` that the training
captions went through (lower case, punctuation deleted, split on white space: "A man's T-shirt." → a mans
tshirt), instead of coco-caption's PTB tokenizer, which needs a Java Stanford CoreNLP process; the two
agree on plain words and differ where punctuation sits inside a word ("t-shirt": PTB keeps it whole). METEOR runs the Meteor 1.5 jar in a Java process (skipped, with a
note, where `java` is not on PATH) that is closed before `caption_metrics` returns. SPICE runs only when
Stanford CoreNLP 3.6.0's jars are already in pycocoevalcap's `spice/lib`: lienzo never downloads them.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from lienzo.errors import ConfigError, DataError, did_you_mean

METRICS = ("bleu", "meteor", "rouge", "cider", "spice")
KEYS = {"bleu": ("bleu1", "bleu2", "bleu3", "bleu4"), "meteor": ("meteor",), "rouge": ("rouge_l",),
        "cider": ("cider",), "spice": ("spice",)}
CORENLP_JARS = ("stanford-corenlp-3.6.0.jar", "stanford-corenlp-3.6.0-models.jar")  # what SPICE loads
_NOT_WORD = re.compile(r"[^\w\s]|_")  # punctuation, deleted (not spaced) as neuraltalk2's prepro did


def caption_metrics(references: Mapping[object, list[str]], candidates: Mapping[object, str], *,
                    metrics=METRICS, tokenized: bool = False) -> dict[str, float | None | list[str]]:
    """Corpus-level scores of one candidate caption per id against that id's reference captions.

    Keys: bleu1..bleu4 (corpus BLEU, "closest" reference length, as coco-caption), meteor, rouge_l, cider
    (CIDEr-D: clipped, length-penalised, ×10, idf from the references of these ids, so it needs several
    ids with different words to be non-zero), spice, for the requested `metrics`, plus "_notes": the reasons
    for any of them being None. `tokenized=True` takes texts as space-separated tokens and only
    normalises their whitespace. An empty candidate is scored (as 0 on most metrics), since an untrained
    decoder may write one; a missing id or a reference with no words is a DataError.
    """
    metrics = _check_metrics(metrics)
    refs, cands = _prepare(references, candidates, tokenized)
    scores: dict[str, float | None | list[str]] = {}
    notes = []
    for metric in metrics:
        values, note = _SCORERS[metric](refs, cands)
        scores.update(zip(KEYS[metric], values))
        if note:
            notes.append(note)
    scores["_notes"] = notes
    return scores


def metric_notes() -> list[str]:
    """Which metrics cannot be computed on this machine and why (empty when all can), for reports."""
    return [note for note in (_meteor_missing(), _spice_missing()) if note]


def _tokenize(text: str) -> list[str]:
    """Karpathy's caption preprocessing, as lienzo.data.captions.tokenize (kept local so that scoring depends on
    no reader): lower case, punctuation deleted, split. "A dog, running!" → a dog running."""
    return _NOT_WORD.sub("", text.lower()).split()


# -- input checks ----------------------------------------------------------------------------------

def _check_metrics(metrics) -> tuple[str, ...]:
    """The requested metric names, in order, without repeats; an unknown name is a ConfigError."""
    names = (metrics,) if isinstance(metrics, str) else tuple(metrics)
    for name in names:
        if name not in METRICS:
            raise ConfigError(f"unknown caption metric {name!r}{did_you_mean(str(name), METRICS)}: "
                              f"choose from {', '.join(METRICS)}")
    if not names:
        raise ConfigError(f"no caption metrics requested: choose from {', '.join(METRICS)}")
    return tuple(dict.fromkeys(names))


def _prepare(references, candidates, tokenized: bool) -> tuple[dict, dict]:
    """pycocoevalcap's input ({id: [text, ...]} both sides) from checked, tokenised texts."""
    if not candidates:
        raise DataError("caption metrics: there are no candidate captions to score")
    _check_ids(references, candidates)
    norm = (lambda text: " ".join(text.split())) if tokenized else (lambda text: " ".join(_tokenize(text)))
    refs, cands = {}, {}
    for key, candidate in candidates.items():
        texts = references[key]
        if isinstance(texts, str) or not texts:
            raise DataError(f"caption metrics: the references of id {key!r} must be a non-empty list of "
                            f"sentences (got {texts!r})")
        if not isinstance(candidate, str):
            raise DataError(f"caption metrics: the candidate of id {key!r} must be one sentence (got {candidate!r})")
        refs[key] = [norm(text) for text in texts]
        if not all(refs[key]):
            raise DataError(f"caption metrics: a reference caption of id {key!r} has no words: {texts!r}")
        cands[key] = [norm(candidate)]
    return refs, cands


def _check_ids(references, candidates) -> None:
    """Both sides must hold the same ids: a missing one is named rather than silently left out."""
    for have, lack, side in ((candidates, references, "references"), (references, candidates, "candidates")):
        missing = [key for key in have if key not in lack]
        if missing:
            more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
            raise DataError(f"caption metrics: id {', '.join(map(repr, missing[:3]))}{more} missing from the "
                            f"{side}: give every image both its references and one candidate")


# -- the scorers: each gives (values in KEYS order, note or None) ----------------------------------

def _bleu(refs, cands):
    from pycocoevalcap.bleu.bleu import Bleu

    values, _ = Bleu(4).compute_score(refs, cands, verbose=0)
    return [float(value) for value in values], None


def _rouge(refs, cands):
    from pycocoevalcap.rouge.rouge import Rouge

    return [float(Rouge().compute_score(refs, cands)[0])], None


def _cider(refs, cands):
    from pycocoevalcap.cider.cider import Cider

    return [float(Cider().compute_score(refs, cands)[0])], None


def _meteor(refs, cands):
    note = _meteor_missing()
    if note:
        return [None], note
    with _meteor_scorer() as (scorer, stderr):
        try:
            return [float(scorer.compute_score(refs, cands)[0])], None
        except (OSError, ValueError) as exc:  # the jar died: a broken pipe, or an empty line instead of a score
            failure = exc
    return [None], f"METEOR: not computed: the Meteor Java process failed ({failure}){stderr and ': ' + stderr[-1]}"


def _spice(refs, cands):
    note = _spice_missing()
    if note:
        return [None], note
    from pycocoevalcap.spice.spice import Spice

    try:  # Spice() only checks the jars that _spice_missing found, it downloads nothing
        return [float(Spice().compute_score(refs, cands)[0])], None
    except (OSError, subprocess.CalledProcessError) as exc:
        return [None], f"SPICE: not computed: the SPICE Java process failed ({exc})"


_SCORERS = {"bleu": _bleu, "meteor": _meteor, "rouge": _rouge, "cider": _cider, "spice": _spice}


# -- Java and the optional files -------------------------------------------------------------------

def _meteor_missing() -> str | None:
    if shutil.which("java") is None:
        return "METEOR: not computed: Java was not found on PATH (install a Java runtime, e.g. default-jre-headless)"
    return None


def _spice_missing() -> str | None:
    if shutil.which("java") is None:
        return "SPICE: not computed: Java was not found on PATH (install a Java runtime, e.g. default-jre-headless)"
    lib = _spice_lib()
    missing = [name for name in CORENLP_JARS if not (lib / name).is_file()]
    if missing:
        return (f"SPICE: not computed: {' and '.join(missing)} not found in {lib} (copy Stanford CoreNLP 3.6.0's "
                f"jars there to enable it; lienzo never downloads them)")
    return None


def _spice_lib() -> Path:
    """pycocoevalcap's spice/lib folder (pycocoevalcap is a namespace package: no __file__, one path)."""
    import pycocoevalcap

    return Path(next(iter(pycocoevalcap.__path__))) / "spice" / "lib"


@contextmanager
def _meteor_scorer() -> Iterator[tuple[object, list[str]]]:
    """pycocoevalcap's Meteor and a list that receives Java's stderr lines, with the Java process ended on
    leaving rather than whenever the garbage collector gets to Meteor.__del__ (a stray 2 GB JVM otherwise)."""
    from pycocoevalcap.meteor.meteor import Meteor

    scorer, stderr = Meteor(), []
    try:
        yield scorer, stderr
    finally:
        if scorer.lock.locked():  # compute_score failed holding it: Meteor.__del__ would wait on it forever
            scorer.lock.release()
        stderr.extend(_end(scorer.meteor_p))


def _end(process: subprocess.Popen) -> list[str]:
    """Close Meteor's input (it exits at end of input), reap it (killed if it does not exit promptly) and
    return what it wrote to stderr, read only now that it has ended so the read cannot block."""
    try:
        process.stdin.close()
    except OSError:  # a broken pipe: the process is already gone
        pass
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    lines = process.stderr.read().decode(errors="replace").strip().splitlines()
    process.stdout.close()
    process.stderr.close()
    return lines
