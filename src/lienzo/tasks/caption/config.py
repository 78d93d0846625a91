"""The caption task's settings: the `caption` section and the shared sections with its defaults."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from lienzo.config import (
    DataConfig,
    FinetuneConfig,
    OptimConfig,
    bounded,
    choice,
    validate_finetune,
)
from lienzo.errors import ConfigError
from lienzo.models.registry import list_models, model_kind

log = logging.getLogger("lienzo")


GENERATORS = ("showtell", "attend")
MARGINS = {"sum": 1.0, "hardest": 0.2}  # the thesis's sum of hinges (margin 1); VSE++'s hardest negative (0.2)


# -- config ------------------------------------------------------------------------------------------

@dataclass
class CaptionDataConfig(DataConfig):
    name: str = "captions"  # image files named by a caption file (data.captions)
    root: str | None = None  # the folder the caption file's image paths are relative to; None = the file's folder
    captions: str | None = None  # Karpathy's dataset_*.json, Flickr8k.token.txt, COCO captions_*.json, or CSV/JSONL
    format: str = choice("auto", ("auto", "karpathy", "flickr8k", "coco", "csv", "jsonl"))
    split_file: str | None = None  # COCO: Karpathy's json or "<file> <split>" lines; Flickr8k: the split lists' folder
    restval: str = choice("train", ("train", "val", "test", "drop"))  # where Karpathy's restval images go
    val_fraction: float = 0.05  # CSV/JSONL without a split column: images held out (by file name, seeded)
    test_fraction: float = bounded(0.05, "[0, 1)")
    batch_size: int = 128  # (image, caption) pairs per step


@dataclass
class CaptionOptimConfig(OptimConfig):
    name: str = "adam"
    lr: float = 2e-4


@dataclass
class CaptionConfig:
    model: str = choice("rank", ("rank", *GENERATORS))  # rank (image–sentence retrieval), showtell or attend
    # (caption generation)
    backbone: str = "vgg16"  # the image network: a torchvision/timm name or a lienzo run folder (lienzo.transfer)
    weights: str | None = "IMAGENET1K_V1"  # its weights: a file, or a torchvision name in $TORCH_HOME/hub/checkpoints
    layer: str = "fc7"  # its layer whose output is the image feature; attend: a convolutional grid (pool5)
    grid_pool: int = bounded(1, "[1, inf)")  # rank/showtell on a convolutional layer: the grid averaged to k×k and
    # flattened (1 = one vector; 2 or more keeps where things are); attend takes the whole grid
    features: str | None = None  # a features file to use as it is; None = computed once into `cache` and reused
    cache: str = "cache/features"  # where computed features files are kept (one per caption file, backbone, layer)
    min_count: int = bounded(5, "[1, inf)")  # words seen fewer times in the training captions are <unk>
    max_length: int = bounded(16, "[1, inf)")  # words per caption (longer ones are cut, and counted)
    word_dim: int | None = bounded(None, "[1, inf)")  # word vectors (None: 300 for rank, 512 for the generators)
    word_vectors: str | None = None  # GloVe/word2vec text file to start the word vectors from (its dim = word_dim)
    joint_dim: int = bounded(1024, "[1, inf)")  # rank: the joint space
    encoder: str = choice("brnn", ("brnn", "gru", "lstm"))  # rank: sentence encoder brnn (the thesis's
    # bidirectional net), gru or lstm
    score: str = choice("cosine", ("cosine", "dot"))  # rank: cosine or dot
    loss: str = choice("sum", tuple(MARGINS))  # rank: sum (of hinges, the thesis) or hardest (VSE++'s hardest
    # negative)
    margin: float | None = bounded(None, "[0, inf)")  # rank: hinge margin; None = 1.0 for sum, 0.2 for hardest
    hidden: int = bounded(512, "[1, inf)")  # generators: LSTM size
    attention_dim: int = bounded(512, "[1, inf)")  # attend: size of the attention layer
    attention_weight: float = bounded(1.0, "[0, inf)")  # attend: λ of the doubly stochastic attention penalty
    dropout: float | None = bounded(None, "[0, 1)")  # None = the model's default
    scheduled_sampling: float = bounded(0.0, "[0, 1]")  # generators: largest chance of feeding the model its own
    # word, reached linearly
    finetune: bool = False  # train the image network too, end to end on the images (its layers' rates, frozen and
    # re-initialised layers: the `finetune` section, as in transfer; the rest at optim.lr); False = cached features
    grad_clip: float | None = bounded(2.0, "(0, inf)")  # gradient norm clipping; None = none
    beam: int = bounded(3, "[1, inf)")  # beam width of generated captions (1 = greedy)
    length_penalty: float = bounded(0.0, "[0, inf)")  # GNMT length normalisation α of beam scores (0 = sum of
    # log-probabilities)
    val_images: int | None = bounded(1000, "[1, inf)")  # validation images scored per epoch (None = all)
    monitor: str = choice("auto", ("auto", "cider", "bleu4", "rsum", "loss"))  # what chooses best.ckpt: auto (rsum
    # for rank, cider for generators), cider, bleu4, rsum, loss


SECTIONS = {"data": CaptionDataConfig, "optim": CaptionOptimConfig, "caption": CaptionConfig,
            "finetune": FinetuneConfig}

# Keys of other tasks, set on a caption run: what to do instead (the rest: "a caption run does not use it").
_NO_PIXELS = "a caption run's image network (caption.backbone) prepares the images its own way"
_NO_CLASSES = "captions, not classes, are a caption run's labels"
HINTS = {
    "data.image_size": _NO_PIXELS,
    "data.channels": _NO_PIXELS,
    "data.normalize": _NO_PIXELS,
    "data.classes": _NO_CLASSES,
    "data.label_mode": _NO_CLASSES,
    "data.augment": "a caption run trains on cached features of the images as they are",
    "data.random_erasing": "a caption run trains on cached features of the images as they are",
    "data.progressive_scale": "a caption run trains on cached features of the images as they are",
    "finetune.unfreeze_after": "a caption run fine-tunes every group from the start (freeze a group with "
                               "finetune.groups[i].freeze instead)",
    "gan": "a caption run trains no GAN (task: generate does)",
}


def validate(cfg) -> None:
    """The checks beyond each key's type, choices and range (lienzo.config checks those)."""
    c = cfg.caption
    if model_kind(c.model) != "caption":
        raise ConfigError(f"caption.model: {c.model} is not a captioning model ({', '.join(list_models(kind='caption'))})")
    if c.model == "rank" and c.monitor in ("cider", "bleu4"):
        raise ConfigError(f"caption.monitor: {c.monitor} measures generated captions; a rank model monitors rsum or loss")
    if c.model != "rank" and c.monitor == "rsum":
        raise ConfigError("caption.monitor: rsum measures retrieval; a generator monitors cider, bleu4 or loss")
    if c.word_vectors and not Path(c.word_vectors).is_file():
        raise ConfigError(f"caption.word_vectors: {c.word_vectors} does not exist (a GloVe or word2vec text file)")
    if c.features and not Path(c.features).is_file():
        raise ConfigError(f"caption.features: {c.features} does not exist (leave it unset to compute the features)")
    if c.finetune and c.features:
        raise ConfigError("caption.finetune trains the image network on the images; caption.features (a fixed features "
                          "file) cannot be fine-tuned: unset one of them")
    if cfg.finetune.groups and not c.finetune:
        raise ConfigError("finetune.groups: set caption.finetune=true to fine-tune the image network (without it the "
                          "features are cached and fixed)")
    validate_finetune(cfg.finetune)
    if cfg.optim.schedule == "plateau":
        raise ConfigError("optim.schedule: plateau is not offered by the caption task; use step (decay every "
                          "optim.step_size epochs, as VSE++), cosine or linear")
