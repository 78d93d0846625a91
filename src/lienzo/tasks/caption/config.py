"""The caption task's settings: the `caption` section and the shared sections with its defaults."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from lienzo.config import DataConfig, OptimConfig, validate_finetune
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
    format: str = "auto"  # auto, karpathy, flickr8k, coco, csv, jsonl
    split_file: str | None = None  # COCO: Karpathy's json or "<file> <split>" lines; Flickr8k: the split lists' folder
    restval: str = "train"  # where Karpathy's restval images go: train, val, test or drop
    val_fraction: float = 0.05  # CSV/JSONL without a split column: images held out (by file name, seeded)
    test_fraction: float = 0.05
    batch_size: int = 128  # (image, caption) pairs per step
    normalize: bool = False  # (features, not pixels: unused)


@dataclass
class CaptionOptimConfig(OptimConfig):
    name: str = "adam"
    lr: float = 2e-4


@dataclass
class CaptionConfig:
    model: str = "rank"  # rank (image–sentence retrieval), showtell or attend (caption generation)
    backbone: str = "vgg16"  # the image network: a torchvision/timm name or a lienzo run folder (lienzo.transfer)
    weights: str | None = "IMAGENET1K_V1"  # its weights: a file, or a torchvision name in $TORCH_HOME/hub/checkpoints
    layer: str = "fc7"  # its layer whose output is the image feature; attend: a convolutional grid (pool5)
    grid_pool: int = 1  # rank/showtell on a convolutional layer: the grid averaged to k×k and flattened (1 = one
    # vector; 2 or more keeps where things are); attend takes the whole grid
    features: str | None = None  # a features file to use as it is; None = computed once into `cache` and reused
    cache: str = "cache/features"  # where computed features files are kept (one per caption file, backbone, layer)
    min_count: int = 5  # words seen fewer times in the training captions are <unk>
    max_length: int = 16  # words per caption (longer ones are cut, and counted)
    word_dim: int | None = None  # word vectors (None: 300 for rank, 512 for the generators)
    word_vectors: str | None = None  # GloVe/word2vec text file to start the word vectors from (its dim = word_dim)
    joint_dim: int = 1024  # rank: the joint space
    encoder: str = "brnn"  # rank: sentence encoder brnn (the thesis's bidirectional net), gru or lstm
    score: str = "cosine"  # rank: cosine or dot
    loss: str = "sum"  # rank: sum (of hinges, the thesis) or hardest (VSE++'s hardest negative)
    margin: float | None = None  # rank: hinge margin; None = 1.0 for sum, 0.2 for hardest
    hidden: int = 512  # generators: LSTM size
    attention_dim: int = 512  # attend: size of the attention layer
    attention_weight: float = 1.0  # attend: λ of the doubly stochastic attention penalty
    dropout: float | None = None  # None = the model's default
    scheduled_sampling: float = 0.0  # generators: largest chance of feeding the model its own word, reached linearly
    finetune: bool = False  # train the image network too, end to end on the images (its layers' rates, frozen and
    # re-initialised layers: the `finetune` section, as in transfer; the rest at optim.lr); False = cached features
    grad_clip: float | None = 2.0  # gradient norm clipping
    beam: int = 3  # beam width of generated captions (1 = greedy)
    length_penalty: float = 0.0  # GNMT length normalisation α of beam scores (0 = sum of log-probabilities)
    val_images: int | None = 1000  # validation images scored per epoch (None = all)
    monitor: str = "auto"  # what chooses best.ckpt: auto (rsum for rank, cider for generators), cider, bleu4, rsum, loss


CHOICES = {"model": ("rank", *GENERATORS), "encoder": ("brnn", "gru", "lstm"), "score": ("cosine", "dot"),
           "loss": tuple(MARGINS), "monitor": ("auto", "cider", "bleu4", "rsum", "loss")}


def validate(cfg) -> None:
    c, d = cfg.caption, cfg.data
    for key, options in CHOICES.items():
        if getattr(c, key) not in options:
            raise ConfigError(f"caption.{key}: {getattr(c, key)!r} is not one of {', '.join(options)}")
    if model_kind(c.model) != "caption":
        raise ConfigError(f"caption.model: {c.model} is not a captioning model ({', '.join(list_models(kind='caption'))})")
    if d.format not in ("auto", "karpathy", "flickr8k", "coco", "csv", "jsonl"):
        raise ConfigError(f"data.format: {d.format!r} is not one of auto, karpathy, flickr8k, coco, csv, jsonl")
    if d.restval not in ("train", "val", "test", "drop"):
        raise ConfigError(f"data.restval: {d.restval!r} is not one of train, val, test, drop")
    for key in ("min_count", "max_length", "joint_dim", "hidden", "attention_dim", "beam", "grid_pool"):
        if getattr(c, key) < 1:
            raise ConfigError(f"caption.{key}: must be at least 1, got {getattr(c, key)}")
    if not 0.0 <= c.scheduled_sampling <= 1.0:
        raise ConfigError(f"caption.scheduled_sampling: must be in [0, 1], got {c.scheduled_sampling}")
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
    if cfg.finetune.unfreeze_after:
        raise ConfigError("finetune.unfreeze_after: the caption task fine-tunes every group from the start "
                          "(freeze a group with finetune.groups[i].freeze instead)")
    if cfg.optim.schedule == "plateau":
        raise ConfigError("optim.schedule: plateau is not offered by the caption task; use step (decay every "
                          "optim.step_size epochs, as VSE++), cosine or linear")
    if c.val_images is not None and c.val_images < 1:
        raise ConfigError(f"caption.val_images: must be at least 1 (or null for all), got {c.val_images}")
    if c.margin is not None and c.margin < 0:
        raise ConfigError(f"caption.margin: must be >= 0, got {c.margin}")
    if c.grad_clip is not None and c.grad_clip <= 0:
        raise ConfigError(f"caption.grad_clip: must be > 0 (or null for no clipping), got {c.grad_clip}")
    for key in ("image_size", "channels", "classes", "random_erasing", "progressive_scale"):
        if getattr(d, key) is not None:
            raise ConfigError(f"data.{key}: not used by the caption task (the image network's own preprocessing "
                              "sizes the images; captions, not classes, are the labels)")
    if d.augment != "none":
        raise ConfigError("data.augment: the caption task trains on cached features of the images as they are (none)")
