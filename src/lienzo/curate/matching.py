"""`lienzo curate match`: descriptive file names + a class vocabulary → out/<class>/ (the thesis's
Algorithm 1): split names into words, drop stopwords, match words and compounds, singular or plural, against
each class name and its synonyms; the files left out are listed in out/unsorted.csv.
"""

from __future__ import annotations

import logging
import re
from collections import Counter, defaultdict
from pathlib import Path

from lienzo.curate.files import csv_text, place, safe_folder_name
from lienzo.data.images import IMAGE_SUFFIXES
from lienzo.errors import ConfigError, DataError, RunError
from lienzo.runs import atomic_write_text

log = logging.getLogger("lienzo")

STOPWORDS = frozenset("""a an and the of in on at to for with by from or as is are was be this that these those it its
into over under near my your our their his her img image images photo picture pic clipart clip art drawing
illustration vector icon stock free hd jpg jpeg png gif copy final new old small large big
imgs photos pictures pics drawings illustrations vectors icons""".split())

# plurals that no suffix rule spells; a class name ending in the key also takes the plural ('snowman' → 'snowmen')
IRREGULAR_PLURALS = {"man": "men", "child": "children", "person": "people", "mouse": "mice", "goose": "geese",
                     "foot": "feet", "tooth": "teeth", "ox": "oxen", "louse": "lice", "die": "dice",
                     "cactus": "cacti", "fungus": "fungi"}

# ImageNet names two pairs of classes alike; torchvision renamed one of each to keep its names unique.
# Their folders keep torchvision's names, and each also answers to ImageNet's, so that 'crane.jpg' is
# ambiguous (the bird or the machine?) and left out, while 'crane-bird.jpg' is the bird.
IMAGENET_SHARED_NAMES = {"crane bird": "crane bird, crane",
                         "maillot tank suit": "maillot tank suit, maillot, tank suit"}

UNSORTED_FILE = "unsorted.csv"  # match's list of the files it left out, and why


def words(text: str) -> list[str]:
    """'BlackSwan_on-lake02' → ['black', 'swan', 'on', 'lake']: camelCase, separators and digits split words."""
    text = re.sub(r"([a-z])([A-Z])", r"\1 \2", text)
    return [w.lower() for w in re.split(r"[^A-Za-z]+", text) if w]


def read_vocabulary(source: str | list[str]) -> list[tuple[str, list[list[str]]]]:
    """(class name, synonyms as word lists). `source`: 'imagenet', a text file (one class per line, synonyms
    after commas: 'crane, whooping crane'), or a list of names."""
    if isinstance(source, list):
        lines = source
    elif source == "imagenet":
        import torchvision

        categories = torchvision.models.ResNet50_Weights.IMAGENET1K_V1.meta["categories"]
        lines = [IMAGENET_SHARED_NAMES.get(name, name) for name in categories]
    else:
        path = Path(source)
        if not path.is_file():
            raise ConfigError(f"vocabulary file {path} not found (one class per line, synonyms after commas)")
        lines = [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
    vocabulary = []
    for line in lines:
        names = [n.strip() for n in line.split(",") if n.strip()]
        vocabulary.append((names[0], [words(n) for n in names if words(n)]))
    return vocabulary


def plural_forms(word: str) -> set[str]:
    """The plurals simple English spelling allows: 'dog' → dogs; 'fox' → foxes; 'puppy' → puppies;
    'wolf' → wolves; 'knife' → knives; and IRREGULAR_PLURALS ('snowman' → snowmen). A form that is no word
    ('dogses') does no harm: it is only compared with the words of file names."""
    forms = {word + "s"}
    if word.endswith(("s", "x", "z", "ch", "sh", "o")):
        forms.add(word + "es")
    if len(word) > 1 and word[-1] == "y" and word[-2] not in "aeiou":
        forms.add(word[:-1] + "ies")
    if word.endswith("f"):
        forms.add(word[:-1] + "ves")
    if word.endswith("fe"):
        forms.add(word[:-2] + "ves")
    forms.update(word[: len(word) - len(one)] + many for one, many in IRREGULAR_PLURALS.items() if word.endswith(one))
    return forms


def _matches(file_words: list[str], synonym: list[str]) -> bool:
    """The synonym's words appear consecutively, or glued together as a compound ('sun flower' ~ 'sunflower'),
    the last one singular or plural ('black swans', 'sunflowers')."""
    target = "".join(synonym)
    targets = {target} | plural_forms(target)
    longest = max(map(len, targets))
    for i in range(len(file_words)):
        joined = ""
        for j in range(i, len(file_words)):
            joined += file_words[j]
            if joined in targets:
                return True
            if len(joined) >= longest:
                break
    return False


def _classes_named(path: Path, vocab) -> list[int]:
    """Indices of the classes a file's name matches, after the more specific synonym wins ('black swan'
    over 'swan' in 'a-black-swan')."""
    fw = [w for w in words(path.stem) if w not in STOPWORDS]
    hits = {}  # class index → the longest synonym it matched, glued ('blackswan')
    for c, (_, syns) in enumerate(vocab):
        found = ["".join(syn) for syn in syns if _matches(fw, syn)]
        if found:
            hits[c] = max(found, key=len)
    return [c for c, m in hits.items() if not any(m != o and m in o for o in hits.values())]


def match(source: str | Path, vocabulary, out: str | Path, *, single_word: bool = False, min_images: int = 1,
          copy: bool = False) -> dict[str, int]:
    """Sort `source`'s images into out/<class>/ by their file names; returns the count per class kept.

    A name that matches several classes is ambiguous and skipped; classes under min_images are dropped.
    Every file left out is listed, with the reason and the classes it named, in out/unsorted.csv."""
    source, out = Path(source), Path(out)
    if not source.is_dir():
        raise DataError(f"{source}: folder not found")
    if out.exists() and any(out.iterdir()):
        raise RunError(f"{out} exists and is not empty; choose a new output folder")
    vocab = read_vocabulary(vocabulary)
    if single_word:
        vocab = [(name, [s for s in syns if len(s) == 1]) for name, syns in vocab]
    files = sorted(p for p in source.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    by_class: dict[str, list[Path]] = defaultdict(list)
    unsorted = []  # rows of unsorted.csv
    for path in files:
        classes = _classes_named(path, vocab)
        if len(classes) == 1:
            by_class[vocab[classes[0]][0]].append(path)
        else:  # none, or several: e.g. ImageNet's two 'crane' classes (the bird and the machine)
            reason = "ambiguous" if classes else "unmatched"
            unsorted.append({"path": str(path), "reason": reason, "classes": "; ".join(vocab[c][0] for c in classes)})
    kept = {name: paths for name, paths in sorted(by_class.items()) if len(paths) >= min_images}
    if not kept:
        raise DataError(f"{source}: no file name matched a class of the vocabulary"
                        + (f" with at least {min_images} images" if by_class else ""))
    unsorted += [{"path": str(path), "reason": f"class under {min_images} images", "classes": name}
                 for name, paths in sorted(by_class.items()) if name not in kept for path in paths]
    renamed = 0
    for name, paths in kept.items():
        for path in paths:
            renamed += place(path, out / safe_folder_name(name), copy).name != path.name
    atomic_write_text(out / UNSORTED_FILE, csv_text(unsorted, ["path", "reason", "classes"]))
    reasons = Counter(row["reason"] for row in unsorted)
    log.info("matched %d of %d files into %d classes (%d ambiguous, %d unmatched, %d classes under %d images "
             "dropped, %d renamed: name taken); the files left out are listed in %s",
             sum(map(len, kept.values())), len(files), len(kept), reasons["ambiguous"], reasons["unmatched"],
             len(by_class) - len(kept), min_images, renamed, out / UNSORTED_FILE)
    return {name: len(paths) for name, paths in kept.items()}
