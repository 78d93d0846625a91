"""Synthetic "fashion scenes": 1–3 tinted Fashion-MNIST items on a 64×64 canvas, each image with 5 true captions.

The caption study (`lienzo study captions`) needs an image–sentence dataset that every machine can make
offline and whose sentences can be checked against the pixels. Each scene is:

1. background: a plain grey canvas, dark (level 24–63) or light (192–235), with a soft linear gradient
   of ±6 levels in a random direction, so that "on a dark background" is a fact of the image;
2. items: 1–3 Fashion-MNIST garments (train items for the train split; the test split's items, halved
   disjointly, for val and test; no item is used twice), each scaled to a square of 28–47 % of the canvas
   (18–30 px at 64), placed with `composites._place` where its square keeps `PLACE_GAP` pixels from every
   other square along x or y (so items never touch and every pair is left/right or above/below of each
   other), masked with `composites._masks`, and painted with one of `COLOURS` times its shading
   (`SHADE_FLOOR` + the rest × its intensity normalised to the garment's maximum: dark garments stay
   clearly coloured). A second item repeats a previous item's class or colour now and then, so counts
   ("two red bags") occur;
3. captions: 5 distinct sentences from templates (listings, counts, spatial relations, the background)
   with synonyms and either word order. A relation is stated only between items whose tight boxes are
   at least `RELATION_GAP` pixels apart in that direction; a count is stated only when it is exact.

Files (Karpathy's split format, which the caption readers take like Flickr8k's):

    out/images/<split>_<i:05d>.png                       RGB, size×size
    out/dataset_fashionscenes.json                       {"dataset": "fashionscenes", "images": [
        {"filename": "train_00000.png", "filepath": "images", "split": "train", "imgid": 0, "sentids": [...],
         "background": "dark", "sentences": [{"tokens": [...], "raw": "A red bag above a blue coat.",
         "sentid": 0, "imgid": 0}, ...],
         "items": [{"class": "bag", "label": 8, "colour": "red", "box": [x0, y0, x1, y1],
                    "fashion_index": 123}, ...]}, ...]}

A box is the item's tight mask box in pixels, x1 and y1 exclusive (pixels x0..x1-1); `fashion_index` is the
item's row in Fashion-MNIST's train (train split) or test (val, test) file. Everything is drawn from
`numpy.random.default_rng([seed, stream])` per split, so the same seed gives the same bytes.

    json_path = build_fashion_scenes("data/fashion_scenes", train=6000, val=1000, test=1000, seed=0)
    images, scenes, captions = make_fashion_scenes("val", 10)   # in memory, for a look
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from lienzo.errors import ConfigError, RunError
from lienzo.data.composites import ITEM_SCALE, item_masks, place_items
from lienzo.data.idx import DEFAULT_ROOTS, FASHION_MNIST_CLASSES, load_idx_split

log = logging.getLogger("lienzo")

JSON_NAME = "dataset_fashionscenes.json"
SPLITS = ("train", "val", "test")
SOURCE = {"train": "train", "val": "test", "test": "test"}  # the Fashion-MNIST file each split's items come from
STREAM = {"train": 0, "val": 1, "test": 2}
HALVES_STREAM = 3  # the permutation that gives val and test disjoint halves of Fashion-MNIST's test items

ITEM_COUNTS = (0.3, 0.4, 0.3)  # probability of 1, 2, 3 items
ITEM_SIDE = (0.28, 0.47)  # an item's square side, as a fraction of the canvas (18–30 px at 64)
PLACE_GAP = 3  # pixels between two items' squares along x or y
RELATION_GAP = 2  # pixels between two tight boxes for "left of"/"above" to be stated
PLACE_TRIES = 64  # random positions tried per item and side before the side shrinks by 2 px
REPEAT_CLASS = 0.2  # chance that an item repeats a previous item's class (so "two bags" occurs)
REPEAT_COLOUR = 0.25  # chance that an item repeats a previous item's colour (so "two red items" occurs)
SHADE_FLOOR = 0.4  # a garment's darkest masked pixel keeps 40 % of its colour
DARK_LEVELS, LIGHT_LEVELS = (24, 64), (192, 236)  # background grey levels (high end exclusive)
GRADIENT = 6.0  # background gradient amplitude, grey levels
MAX_TOKENS = 16
CAPTIONS_PER_IMAGE = 5
CHUNK = 256  # scenes rendered at a time: bounds the float canvases' memory
MIN_SIZE = 32

COLOURS = {  # clearly distinct hues whose names are single simple tokens
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (45, 85, 230),
    "yellow": (235, 215, 40),
    "purple": (150, 55, 200),
    "orange": (245, 135, 25),
}
CLASS_NAMES = [name.lower() for name in FASHION_MNIST_CLASSES]
NOUNS = [  # (singular synonyms, plural synonyms) per Fashion-MNIST label; no punctuation inside a word
    (("top", "tee", "tshirt"), ("tops", "tees", "tshirts")),
    (("pair of trousers", "pair of pants"), ("pairs of trousers", "pairs of pants")),
    (("pullover", "sweater", "jumper"), ("pullovers", "sweaters", "jumpers")),
    (("dress",), ("dresses",)),
    (("coat", "jacket"), ("coats", "jackets")),
    (("sandal",), ("sandals",)),
    (("shirt",), ("shirts",)),
    (("sneaker", "trainer"), ("sneakers", "trainers")),
    (("bag", "handbag", "purse"), ("bags", "handbags", "purses")),
    (("ankle boot", "boot"), ("ankle boots", "boots")),
]
NUMBERS = {2: "two", 3: "three"}
RELATION_FORMS = {  # "{a} ... {b}" where a is <relation> of b
    "left": ("{a} to the left of {b}", "{a} is to the left of {b}", "{a} left of {b}", "{a} is left of {b}",
             "there is {a} to the left of {b}"),
    "right": ("{a} to the right of {b}", "{a} is to the right of {b}", "{a} right of {b}", "{a} is right of {b}",
              "there is {a} to the right of {b}"),
    "above": ("{a} above {b}", "{a} is above {b}", "{a} over {b}", "there is {a} above {b}"),
    "below": ("{a} below {b}", "{a} is below {b}", "{a} under {b}", "{a} beneath {b}", "there is {a} below {b}"),
}


@dataclass
class SceneItem:
    """One garment of a scene: what it is, where its square went and (after rendering) its tight box."""

    label: int
    colour: str
    fashion_index: int  # row in the Fashion-MNIST file of the split's SOURCE
    square: tuple[int, int, int]  # x0, y0, side of the garment's 28×28 square on the canvas
    box: tuple[int, int, int, int] | None = None  # tight mask box (x0, y0, x1, y1), x1/y1 exclusive


@dataclass
class Scene:
    """The items and the background of one image."""

    items: list[SceneItem]
    level: int  # background grey level
    angle: float  # background gradient direction, radians
    dark: bool = field(init=False)

    def __post_init__(self):
        self.dark = self.level < 128


def tokenize(raw: str) -> list[str]:
    """Karpathy's tokens: lower case, punctuation dropped, split on white space."""
    return re.sub(r"[^a-z0-9 ]", " ", raw.lower()).split()


# -- planning: which garments, colours and squares ----------------------------------------------------

class _Pools:
    """The split's unused Fashion-MNIST rows per class, in a random order; each row is taken once."""

    def __init__(self, labels: np.ndarray, allowed: np.ndarray, rng: np.random.Generator, split: str):
        self.split = split
        self.rows = [rng.permutation(allowed[labels[allowed] == c]) for c in range(len(CLASS_NAMES))]
        self.taken = [0] * len(CLASS_NAMES)

    def take(self, label: int) -> int:
        if self.taken[label] >= len(self.rows[label]):
            raise ConfigError(f"fashion scenes: the {self.split} split used up Fashion-MNIST's "
                              f"{len(self.rows[label])} {CLASS_NAMES[label]} items (each is used once): "
                              f"ask for fewer {self.split} images")
        self.taken[label] += 1
        return int(self.rows[label][self.taken[label] - 1])


def _gap_ok(xy: np.ndarray, side: int, squares: list[tuple[int, int, int]]) -> np.ndarray:
    """Which candidate corners (K×2) keep a side×side square PLACE_GAP pixels from every square, along x or y."""
    ok = np.ones(len(xy), dtype=bool)
    for x0, y0, other in squares:
        gap_x = np.maximum(x0 - (xy[:, 0] + side), xy[:, 0] - (x0 + other))
        gap_y = np.maximum(y0 - (xy[:, 1] + side), xy[:, 1] - (y0 + other))
        ok &= (gap_x >= PLACE_GAP) | (gap_y >= PLACE_GAP)
    return ok


def _layout(rng: np.random.Generator, count: int, size: int) -> list[tuple[int, int, int]]:
    """Up to `count` squares (x0, y0, side): a random side and corner, the side shrinking when no tried corner
    keeps the gap; an item that fits at no side is left out (rare: three large squares placed badly)."""
    low, high = round(ITEM_SIDE[0] * size), round(ITEM_SIDE[1] * size)
    squares: list[tuple[int, int, int]] = []
    for _ in range(count):
        side = int(rng.integers(low, high + 1))
        while side >= low:
            xy = rng.integers(0, size - side + 1, (PLACE_TRIES, 2))
            ok = _gap_ok(xy, side, squares)
            if ok.any():
                x0, y0 = xy[int(ok.argmax())]
                squares.append((int(x0), int(y0), side))
                break
            side -= 2
    return squares


def _plan_scene(rng: np.random.Generator, pools: _Pools, size: int) -> Scene:
    """One scene's garments, colours, squares and background."""
    count = int(rng.choice(len(ITEM_COUNTS), p=ITEM_COUNTS)) + 1
    colours = list(COLOURS)
    items: list[SceneItem] = []
    for square in _layout(rng, count, size):
        repeat_class, repeat_colour = rng.random(2)
        label = items[int(rng.integers(len(items)))].label if items and repeat_class < REPEAT_CLASS \
            else int(rng.integers(len(CLASS_NAMES)))
        colour = items[int(rng.integers(len(items)))].colour if items and repeat_colour < REPEAT_COLOUR \
            else colours[int(rng.integers(len(colours)))]
        items.append(SceneItem(label, colour, pools.take(label), square))
    levels = DARK_LEVELS if rng.random() < 0.5 else LIGHT_LEVELS
    return Scene(items, int(rng.integers(*levels)), float(rng.uniform(0, 2 * np.pi)))


def source_rows(split: str, n_source: int, seed: int) -> np.ndarray:
    """The rows of the SOURCE file that `split` may use: all train rows, or disjoint halves of the test rows."""
    if split == "train":
        return np.arange(n_source)
    order = np.random.default_rng([seed, HALVES_STREAM]).permutation(n_source)
    return np.sort(order[: n_source // 2] if split == "val" else order[n_source // 2:])


def plan_scenes(labels: np.ndarray, split: str, n: int, size: int = 64, seed: int = 0) -> list[Scene]:
    """n scenes of `split` drawn from its SOURCE file's `labels` (the rows `source_rows` allows)."""
    rng = np.random.default_rng([seed, STREAM[split]])
    pools = _Pools(labels, source_rows(split, len(labels), seed), rng, split)
    return [_plan_scene(rng, pools, size) for _ in range(n)]


# -- rendering ----------------------------------------------------------------------------------------

def _backgrounds(scenes: list[Scene], size: int) -> torch.Tensor:
    """float N×1×S×S grey canvases: each scene's level plus a soft gradient along its angle."""
    axis = torch.linspace(-1, 1, size)
    v, u = torch.meshgrid(axis, axis, indexing="ij")
    level = torch.tensor([s.level for s in scenes], dtype=torch.float32).view(-1, 1, 1)
    angle = torch.tensor([s.angle for s in scenes], dtype=torch.float32).view(-1, 1, 1)
    return (level + GRADIENT * (torch.cos(angle) * u + torch.sin(angle) * v)).unsqueeze(1)


def _place_draws(items: list[SceneItem], size: int) -> np.ndarray:
    """`_place`'s draw columns (scale, x, y in its parametrisation) that put each garment on its square."""
    square = np.array([item.square for item in items], dtype=np.float64).reshape(-1, 3)
    scale = square[:, 2] / size
    return np.stack([(scale - ITEM_SCALE[0]) / (ITEM_SCALE[1] - ITEM_SCALE[0]),
                     square[:, 0] / size / (1 - scale), square[:, 1] / size / (1 - scale)], 1)


def _tight_boxes(masks: torch.Tensor) -> list[tuple[int, int, int, int]]:
    """(x0, y0, x1, y1) of each K×S×S mask's pixels, x1/y1 exclusive."""
    size = masks.shape[-1]
    cols, rows = masks.any(1).int(), masks.any(2).int()
    x0, y0 = cols.argmax(1), rows.argmax(1)
    x1, y1 = size - cols.flip(1).argmax(1), size - rows.flip(1).argmax(1)
    return [tuple(int(v) for v in box) for box in torch.stack([x0, y0, x1, y1], 1)]


def render_scenes(scenes: list[Scene], garments: torch.Tensor, size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """(uint8 N×3×S×S images, bool K×S×S masks of the scenes' items in order) from the grey garments
    (uint8 M×28×28, indexed by fashion_index); sets each item's `box`."""
    items = [item for scene in scenes for item in scene.items]
    owner = torch.tensor([i for i, scene in enumerate(scenes) for _ in scene.items], dtype=torch.long)
    grey = garments[torch.tensor([item.fashion_index for item in items], dtype=torch.long)].float()
    grey = grey * (255 / grey.amax((1, 2), keepdim=True).clamp(min=1))  # every garment reaches full intensity
    intensity = place_items(grey, _place_draws(items, size), size)
    masks = item_masks(intensity)
    for item, box in zip(items, _tight_boxes(masks)):
        item.box = box
    tint = torch.tensor([COLOURS[item.colour] for item in items], dtype=torch.float32).view(-1, 3, 1, 1)
    paint = tint * (SHADE_FLOOR + (1 - SHADE_FLOOR) * intensity.unsqueeze(1)) * masks.unsqueeze(1)
    covered = torch.zeros(len(scenes), size, size).index_add_(0, owner, masks.float()).clamp(max=1)
    painted = torch.zeros(len(scenes), 3, size, size).index_add_(0, owner, paint)
    images = _backgrounds(scenes, size) * (1 - covered.unsqueeze(1)) + painted
    return images.round().clamp(0, 255).to(torch.uint8), masks


# -- captions -----------------------------------------------------------------------------------------

def relations(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> list[str]:
    """The relations ("left", "right", "above", "below") that box a has to box b, each only when the
    boxes are at least RELATION_GAP pixels apart in that direction."""
    found = []
    if a[2] + RELATION_GAP <= b[0]:
        found.append("left")
    if b[2] + RELATION_GAP <= a[0]:
        found.append("right")
    if a[3] + RELATION_GAP <= b[1]:
        found.append("above")
    if b[3] + RELATION_GAP <= a[1]:
        found.append("below")
    return found


def _pick(rng: np.random.Generator, options):
    return options[int(rng.integers(len(options)))]


def _phrase(rng: np.random.Generator, label: int, colour: str | None, count: int = 1) -> str:
    """"a red bag", "an ankle boot", "two blue coats"."""
    words = ([colour] if colour else []) + [_pick(rng, NOUNS[label][count > 1])]
    if count > 1:
        return f"{NUMBERS[count]} {' '.join(words)}"
    return f"{'an' if words[0][0] in 'aeiou' else 'a'} {' '.join(words)}"


def _join(phrases: list[str]) -> str:
    return phrases[0] if len(phrases) == 1 else f"{', '.join(phrases[:-1])} and {phrases[-1]}"


def _background(scene: Scene) -> str:
    return f"{'dark' if scene.dark else 'light'} background"


def _listing(scene: Scene, rng: np.random.Generator) -> str:
    """Every item, grouped with its exact count: "a picture of two red bags and a blue coat"."""
    colourless = rng.random() < 0.15
    groups = Counter((item.label, None if colourless else item.colour) for item in scene.items)
    keys = [list(groups)[i] for i in rng.permutation(len(groups))]
    phrases = [_phrase(rng, label, colour, groups[(label, colour)]) for label, colour in keys]
    there = "there is " if groups[keys[0]] == 1 else "there are "
    intros = ["", "a picture of ", "an image of ", "a photo of ", there]
    n = len(scene.items)
    if len(groups) > 1:
        intros += [f"{NUMBERS[n]} items: ", f"{NUMBERS[n]} things: "]
    text = _pick(rng, intros) + _join(phrases)
    return text + f" on a {_background(scene)}" if rng.random() < 0.3 else text


def _counting(scene: Scene, rng: np.random.Generator) -> str:
    """Exact counts: "three items", "two red items and a blue bag", "two bags and a green coat"."""
    items = scene.items
    if len(items) == 1:
        item = items[0]
        words = f"{item.colour} {_pick(rng, NOUNS[item.label][0])}"
        return _pick(rng, [f"a single {words}", f"one {words}", f"only one item: a {words}",
                           f"a single item on a {_background(scene)}", f"one {words} on a {_background(scene)}"])
    number = NUMBERS[len(items)]
    options = [f"{number} items", f"there are {number} items", f"{number} things on a {_background(scene)}",
               f"a picture of {number} objects", f"{number} objects on a {_background(scene)}"]
    for colour, k in Counter(item.colour for item in items).items():
        if k > 1:
            rest = [_phrase(rng, item.label, item.colour) for item in items if item.colour != colour]
            options.append(" and ".join([f"{NUMBERS[k]} {colour} items", *rest]))
    for label, k in Counter(item.label for item in items).items():
        if k > 1:
            rest = [_phrase(rng, item.label, item.colour) for item in items if item.label != label]
            options.append(" and ".join([f"{NUMBERS[k]} {_pick(rng, NOUNS[label][1])}", *rest]))
    return _pick(rng, options)


def _relation(scene: Scene, rng: np.random.Generator) -> str | None:
    """One true spatial relation between two differently described items, either way round."""
    pairs = [(a, b, rel) for a in scene.items for b in scene.items
             if (a.label, a.colour) != (b.label, b.colour) for rel in relations(a.box, b.box)]
    if not pairs:
        return None
    a, b, rel = _pick(rng, pairs)
    # now and then one side is named by its class alone, unless that would name both items alike
    drop = (rng.random(2) < 0.15) & (a.label != b.label)
    return _pick(rng, RELATION_FORMS[rel]).format(a=_phrase(rng, a.label, None if drop[0] else a.colour),
                                                  b=_phrase(rng, b.label, None if drop[1] and not drop[0]
                                                            else b.colour))


def scene_captions(scene: Scene, rng: np.random.Generator) -> list[str]:
    """CAPTIONS_PER_IMAGE distinct captions (as written: capitalised, full stop), each at most MAX_TOKENS
    tokens; relations weigh most where there are two items or more. Repeats only if too few exist."""
    templates = [_listing, _counting] + ([_relation, _relation] if len(scene.items) > 1 else [])
    captions: list[str] = []
    for _ in range(200):
        text = _pick(rng, templates)(scene, rng)
        if text and len(tokenize(text)) <= MAX_TOKENS and text not in captions:
            captions.append(text)
            if len(captions) == CAPTIONS_PER_IMAGE:
                break
    captions += [captions[i % len(captions)] for i in range(CAPTIONS_PER_IMAGE - len(captions))]
    return [f"{text[0].upper()}{text[1:]}." for text in captions]


# -- in memory and on disk ---------------------------------------------------------------------------

def _garments(split: str, fashion_root: str | Path | None) -> tuple[torch.Tensor, np.ndarray]:
    """(uint8 M×28×28 grey garments, labels) of the split's SOURCE file."""
    arrays = load_idx_split(fashion_root or DEFAULT_ROOTS["fashion_mnist"], SOURCE[split], FASHION_MNIST_CLASSES,
                            "fashion_mnist")
    return arrays.images[:, 0], arrays.labels.numpy()


def _check(sizes: dict[str, int], size: int) -> None:
    if size < MIN_SIZE:
        raise ConfigError(f"fashion scenes size {size} is too small: use {MIN_SIZE} pixels or more (64 is the study's)")
    for split, n in sizes.items():
        if n < 0:
            raise ConfigError(f"fashion scenes: {split}={n}; the number of images must be 0 or more")
    if not sum(sizes.values()):
        raise ConfigError("fashion scenes: no images asked for; give train, val or test a positive count")


def make_fashion_scenes(split: str, n: int, *, size: int = 64, seed: int = 0,
                        fashion_root: str | Path | None = None) -> tuple[torch.Tensor, list[Scene], list[list[str]]]:
    """n scenes of `split` in memory: (uint8 N×3×S×S images, scenes with boxes, 5 captions each); the same as
    `build_fashion_scenes` writes for that split with the same seed."""
    _check({split: n}, size)
    garments, labels = _garments(split, fashion_root)
    scenes = plan_scenes(labels, split, n, size, seed)
    images = [render_scenes(scenes[i:i + CHUNK], garments, size)[0] for i in range(0, n, CHUNK)]
    rng = np.random.default_rng([seed, STREAM[split], 1])
    return torch.cat(images), scenes, [scene_captions(scene, rng) for scene in scenes]


def _record(split: str, i: int, scene: Scene, captions: list[str], imgid: int, sentid: int) -> dict:
    """One image's entry in Karpathy's format, plus the scene's facts (background, items)."""
    sentences = [{"tokens": tokenize(raw), "raw": raw, "sentid": sentid + j, "imgid": imgid}
                 for j, raw in enumerate(captions)]
    items = [{"class": CLASS_NAMES[item.label], "label": item.label, "colour": item.colour, "box": list(item.box),
              "fashion_index": item.fashion_index} for item in scene.items]
    return {"filename": f"{split}_{i:05d}.png", "filepath": "images", "split": split, "imgid": imgid,
            "sentids": [s["sentid"] for s in sentences], "background": "dark" if scene.dark else "light",
            "sentences": sentences, "items": items}


def _write_split(folder: Path, split: str, n: int, size: int, seed: int, fashion_root, records: list[dict],
                 bar: tqdm) -> None:
    """Render `split` chunk by chunk, writing its PNGs into folder/images and its entries onto `records`."""
    if not n:
        return
    garments, labels = _garments(split, fashion_root)
    scenes = plan_scenes(labels, split, n, size, seed)
    rng = np.random.default_rng([seed, STREAM[split], 1])
    for start in range(0, n, CHUNK):
        images, _ = render_scenes(scenes[start:start + CHUNK], garments, size)
        for offset, image in enumerate(images.permute(0, 2, 3, 1).numpy()):
            i = start + offset
            Image.fromarray(image).save(folder / "images" / f"{split}_{i:05d}.png", format="PNG")
            records.append(_record(split, i, scenes[i], scene_captions(scenes[i], rng), len(records),
                                   CAPTIONS_PER_IMAGE * len(records)))
        bar.update(len(images))


def build_fashion_scenes(out: str | Path, *, train: int = 6000, val: int = 1000, test: int = 1000, size: int = 64,
                         seed: int = 0, fashion_root: str | Path | None = None, progress: bool = True) -> Path:
    """Write the dataset (module docstring) into the new folder `out`; returns its JSON's path. The folder is
    built as `out.partial-<pid>` and renamed when whole; an existing `out` is an error, never overwritten."""
    out = Path(out)
    sizes = {"train": train, "val": val, "test": test}
    _check(sizes, size)
    if out.exists():
        raise RunError(f"{out} exists; choose another folder for the fashion scenes (nothing was overwritten)")
    partial = out.with_name(f"{out.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    (partial / "images").mkdir(parents=True)
    records: list[dict] = []
    try:
        with tqdm(total=sum(sizes.values()), desc="fashion-scenes", unit="img", disable=not progress,
                  leave=False) as bar:
            for split in SPLITS:
                _write_split(partial, split, sizes[split], size, seed, fashion_root, records, bar)
        (partial / JSON_NAME).write_text(json.dumps({"dataset": "fashionscenes", "images": records}))
        if out.exists():
            raise RunError(f"{out} appeared while the fashion scenes were built; choose another folder")
        os.rename(partial, out)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    log.info("wrote %d train, %d val and %d test fashion scenes of %d px to %s", train, val, test, size, out)
    return out / JSON_NAME
