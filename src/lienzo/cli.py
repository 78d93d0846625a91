"""`lienzo <verb>`: a thin face over the public functions.

Exit codes: 0 done; 2 a user mistake (one line, `--debug` for the traceback); 3 some inputs failed and
the rest were done (e.g. `predict` with unreadable files); 130 interrupted (Ctrl-C).

Only argparse, json and lienzo.errors load at start-up: torch, Lightning and scikit-learn are imported
inside the verbs that need them, so `lienzo --help` answers at once and `lienzo models` never loads Lightning.
"""

from __future__ import annotations

import argparse
import os
import contextlib
import json
import logging
import math
import re
import sys
import warnings
from pathlib import Path

from lienzo import __version__
from lienzo.errors import ConfigError, LienzoError
from lienzo.runs import RUN_SORT_KEYS

EXIT_OK = 0
EXIT_USER_ERROR = 2
EXIT_PARTIAL = 3
EXIT_INTERRUPTED = 130

# Flags that are another spelling of a config key: giving both, with different values, is an error.
FLAG_KEYS = {
    "batch_size": ("--batch-size", "data.batch_size"),
    "precision": ("--precision", "trainer.precision"),
    "threads": ("--threads", "trainer.threads"),
}
PRECISIONS = ("auto", "32", "bf16", "16")


# ---- argument types -------------------------------------------------------------------------------------

def int_at_least(minimum: int):
    """An argparse type: an integer >= minimum, refused with a message that says the bound."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse


positive_int = int_at_least(1)
nonnegative_int = int_at_least(0)


def _float_in(low: float, high: float, *, high_open: bool, what: str):
    """An argparse type: a float in [low, high] or [low, high)."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not (low <= value < high if high_open else low <= value <= high):
            raise argparse.ArgumentTypeError(f"{what}, got {text}")
        return value

    parse.__name__ = what
    return parse


fraction = _float_in(0.0, 1.0, high_open=True, what="expected a fraction in [0, 1)")
probability = _float_in(0.0, 1.0, high_open=False, what="expected a probability in [0, 1]")


def positive_number(text: str) -> float:
    """An argparse type: a float > 0 (learning rates)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def _shape(text: str) -> tuple[int, int, int]:
    try:
        values = tuple(int(v) for v in text.replace("x", ",").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected C,H,W such as 3,32,32, got {text!r}") from None
    if len(values) != 3 or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected C,H,W such as 3,32,32, got {text!r}")
    return values


# ---- the parser -----------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    """The `lienzo` parser: every verb sets `handler`, the function that runs it."""
    parser = argparse.ArgumentParser(
        prog="lienzo", description="Deep learning on images.",
        epilog="exit codes: 0 done, 2 user error, 3 some inputs failed (the rest were done), 130 interrupted")
    parser.add_argument("--version", action="version", version=f"lienzo {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    for add in (_add_train, _add_evaluate, _add_sample, _add_predict, _add_models, _add_summary, _add_bench, _add_features,
                _add_svm, _add_tsne, _add_curate, _add_caption, _add_study, _add_runs):
        add(verbs)
    return parser


def _json_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print the results as one line of JSON")


def _threads_flag(p: argparse.ArgumentParser, config_note: str = "") -> None:
    p.add_argument("--threads", type=positive_int, metavar="N",
                   help=f"CPU threads for torch, numpy and scikit-learn (same as trainer.threads{config_note}; "
                        "default: all cores)")


def _overrides(p: argparse.ArgumentParser, text: str) -> None:
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help=text)


def _add_train(verbs) -> None:
    p = verbs.add_parser("train", help="train from a config (or resume a run)",
                         description="Train from a YAML config with key=value overrides, or continue a run "
                                     "with --resume RUN: then RUN's config.yaml is used and only key=value "
                                     "overrides may follow (a config file with --resume is an error).")
    p.add_argument("config", nargs="?", help="YAML config (see configs/); not with --resume")
    _overrides(p, "overrides, e.g. optim.lr=0.05 trainer.max_epochs=5")
    p.add_argument("--resume", metavar="RUN", help="continue RUN from its last.ckpt (key=value overrides only)")
    p.set_defaults(handler=_train)


def _add_evaluate(verbs) -> None:
    p = verbs.add_parser("evaluate", help="re-evaluate a run, optionally on other data")
    p.add_argument("run", help="a run folder made by 'lienzo train'")
    _overrides(p, "data.* / trainer.* overrides (results go to RUN/evaluations/)")
    p.add_argument("--split", choices=("test", "val", "train"), default="test", help="default: test")
    p.add_argument("--n", type=positive_int, help="generate runs: samples scored (default: 50,000, the paper's)")
    _threads_flag(p, " or the run's config")
    _json_flag(p)
    p.set_defaults(handler=_evaluate)


def _add_sample(verbs) -> None:
    p = verbs.add_parser("sample", help="draw samples from a generate run: a grid, PNG files or an HDF5 file")
    p.add_argument("run", help="a generate run folder")
    p.add_argument("--n", type=positive_int, default=64, help="samples (default: 64)")
    p.add_argument("--seed", type=int, default=0, help="noise seed (default: 0)")
    p.add_argument("--out", help="grid.png, a folder/ (one PNG each, RGBA for RGB+mask) or file.h5 "
                                 "(default: RUN/samples/samples-seedS.png)")
    p.add_argument("--interpolate", action="store_true", help="rows of 8 samples walking between two noise vectors")
    _threads_flag(p, " or the run's config")
    p.set_defaults(handler=_sample)


def _add_predict(verbs) -> None:
    p = verbs.add_parser("predict", help="predict classes of image files with a run's best model or an SVM")
    p.add_argument("run", help="a run folder, or an SVM folder made by 'lienzo svm fit'")
    p.add_argument("images", nargs="+", help="image files (any size and mode)")
    p.add_argument("--top-k", type=positive_int, default=5, help="classes per image (default: 5)")
    _threads_flag(p, " or the run's config")
    _json_flag(p)
    p.set_defaults(handler=_predict)


def _add_models(verbs) -> None:
    p = verbs.add_parser("models", help="list the registered architectures by kind, with parameter counts")
    p.add_argument("pattern", nargs="?", default="*", help="shell pattern such as 'res*' (default: all)")
    p.add_argument("--kind", help="only this kind of model, e.g. classifier (default: every kind)")
    _json_flag(p)
    p.set_defaults(handler=_models)


def _add_summary(verbs) -> None:
    p = verbs.add_parser("summary", help="each layer's output volume and parameters")
    p.add_argument("arch", help="a registered architecture (see 'lienzo models')")
    p.add_argument("--input", type=_shape, default=None, metavar="C,H,W",
                   help="image shape (default: 3,224,224 for a classifier, 3,32,32 for a GAN)")
    p.add_argument("--num-classes", type=positive_int, default=None,
                   help="a classifier's classes (default: 1000 from 64 px up, else 10)")
    _json_flag(p)
    _overrides(p, "model.* settings as in a config, e.g. model.maps=32 model.z_dim=64 or model.variant=imagenet")
    p.set_defaults(handler=_summary)


def _add_bench(verbs) -> None:
    p = verbs.add_parser("bench", help="measure speed")
    bench_verbs = p.add_subparsers(dest="bench_verb", required=True, metavar="WHAT")
    b = bench_verbs.add_parser("train", help="training images/s through the Trainer path")
    b.add_argument("arch", help="a registered architecture (see 'lienzo models')")
    b.add_argument("--batch-size", type=positive_int, help="same as data.batch_size (default: 128)")
    b.add_argument("--input", type=_shape, default=(3, 32, 32), metavar="C,H,W", help="default: 3,32,32")
    b.add_argument("--precision", choices=PRECISIONS, help="same as trainer.precision (default: auto)")
    b.add_argument("--steps", type=positive_int, default=20, help="measured steps (default: 20)")
    b.add_argument("--warmup", type=nonnegative_int, default=3, help="unmeasured steps first (default: 3)")
    _threads_flag(b)
    _json_flag(b)
    _overrides(b, "key=value overrides (trainer.*, model.*)")
    b.set_defaults(handler=_bench)


def _add_features(verbs) -> None:
    p = verbs.add_parser("features", help="deep features of a data source (HDF5)")
    feature_verbs = p.add_subparsers(dest="features_verb", required=True, metavar="WHAT")
    f = feature_verbs.add_parser("extract", help="backbone + layer + data source -> features.h5")
    f.add_argument("backbone", help="torchvision name (vgg19, resnet50, ...) or a lienzo run folder")
    _overrides(f, "data.* keys naming the source, e.g. data.name=folder data.root=DIR")
    f.add_argument("--layer", default="penultimate",
                   help="alias (fc6, fc7, pool5, penultimate, logits) or module name (default: penultimate)")
    f.add_argument("--weights", help="local .pth/.safetensors file, torchvision weights name in the hub cache, or run")
    f.add_argument("--config", help="YAML whose data section names the source")
    f.add_argument("--out", help="the .h5 file to write, never overwritten (default: BACKBONE_LAYER.h5 here)")
    f.add_argument("--batch-size", type=positive_int, help="same as data.batch_size (default: 64)")
    f.add_argument("--precision", choices=PRECISIONS, help="same as trainer.precision (default: auto)")
    _threads_flag(f, " or --config's")
    f.add_argument("--no-progress", action="store_true", help="no progress bar")
    f.set_defaults(handler=_features)


def _add_svm(verbs) -> None:
    p = verbs.add_parser("svm", help="SVM on deep features, chosen by cross-validation")
    svm_verbs = p.add_subparsers(dest="svm_verb", required=True, metavar="WHAT")
    f = svm_verbs.add_parser("fit", help="GridSearchCV over kernel, C and gamma on the training features")
    f.add_argument("features", help="a features .h5 file made by 'lienzo features extract'")
    f.add_argument("--out", default="runs/svm", help="model folder, a new name if taken (default: runs/svm)")
    f.add_argument("--kernels", default="linear,rbf,poly,sigmoid", help="default: linear,rbf,poly,sigmoid")
    f.add_argument("--c", default="0.01,0.1,1,10,100", metavar="VALUES",
                   help="comma-separated values of C (default: 0.01,0.1,1,10,100)")
    f.add_argument("--C", dest="c", default=argparse.SUPPRESS, help=argparse.SUPPRESS)  # the old spelling
    f.add_argument("--gamma", default="scale,1e-4,1e-3,1e-2", help="default: scale,1e-4,1e-3,1e-2")
    f.add_argument("--folds", type=int_at_least(2), default=5, help="cross-validation folds (default: 5)")
    f.add_argument("--no-standardize", action="store_true", help="no StandardScaler before the SVM")
    f.add_argument("--linear-svc", action="store_true", help="LinearSVC (fast for many samples) instead of SVC")
    f.add_argument("--probability", action="store_true", help="Platt probabilities (cross-entropy in metrics)")
    f.add_argument("--jobs", type=int, default=-1, help="parallel fits, -1 for all cores (default: -1)")
    f.add_argument("--max-train", type=positive_int, help="fit on a stratified sample of this many training features")
    _threads_flag(f)
    _json_flag(f)
    f.set_defaults(handler=_svm_fit)
    e = svm_verbs.add_parser("evaluate", help="metrics.json schema for the SVM on a features split")
    e.add_argument("model", help="an SVM folder made by 'lienzo svm fit'")
    e.add_argument("features", help="a features .h5 file (results go to MODEL/evaluations/)")
    e.add_argument("--split", default="test", help="default: test")
    _threads_flag(e)
    _json_flag(e)
    e.set_defaults(handler=_svm_evaluate)


def _add_tsne(verbs) -> None:
    p = verbs.add_parser("tsne", help="2-D t-SNE map of a features file, coloured by class")
    p.add_argument("features", help="a features .h5 file made by 'lienzo features extract'")
    p.add_argument("--out", help="PNG path (default: FEATURES.SPLIT.tsne.png next to the features file)")
    p.add_argument("--into-run", action="store_true",
                   help="instead, put the map into the plots and report.html of the run whose network made the features")
    p.add_argument("--split", default="train", help="default: train")
    p.add_argument("--max-points", type=positive_int, default=3000, help="stratified sample size (default: 3000)")
    _threads_flag(p)
    p.set_defaults(handler=_tsne)


def _legacy_out(p: argparse.ArgumentParser) -> None:
    # The output used to be a positional: still accepted, no longer shown.
    p.add_argument("legacy_out", nargs="?", help=argparse.SUPPRESS)


def _add_curate(verbs) -> None:
    p = verbs.add_parser("curate", help="build datasets: match names, score, filter, split, RGB+mask files")
    curate_verbs = p.add_subparsers(dest="curate_verb", required=True, metavar="WHAT")
    c = curate_verbs.add_parser("match", help="file names + class vocabulary -> OUT/<class>/")
    c.add_argument("source", help="a folder of images named by what they show")
    _legacy_out(c)
    c.add_argument("--out", help="the class folders' parent (default: SOURCE_matched beside SOURCE)")
    c.add_argument("--vocabulary", default="imagenet", help="'imagenet' or a text file (synonyms after commas)")
    c.add_argument("--single-word", action="store_true", help="only classes named by one word")
    c.add_argument("--min-images", type=positive_int, default=1, help="drop smaller classes (default: 1)")
    c.add_argument("--copy", action="store_true", help="copy files instead of linking them")
    _json_flag(c)
    c.set_defaults(handler=_curate_match)
    c = curate_verbs.add_parser("score", help="a run's predictions over a folder -> CSV")
    c.add_argument("run", help="a run folder made by 'lienzo train'")
    c.add_argument("folder", help="images in FOLDER/<class>/ or directly in FOLDER")
    c.add_argument("--out", help="CSV path; per-class figures go to .classes.csv beside it "
                                 "(default: FOLDER.scores.csv beside FOLDER)")
    c.add_argument("--top-k", type=positive_int, default=5, help="classes per image (default: 5)")
    _threads_flag(c, " or the run's config")
    _json_flag(c)
    c.set_defaults(handler=_curate_score)
    c = curate_verbs.add_parser(
        "filter", help="keep scored images, or an HDF5 file's samples, by confidence or class",
        description="SCORES.csv: keep the images of a 'curate score' CSV, into OUT/<class>/. "
                    "RUN FILE.h5: a classify run scores the file's images (the RGB part of RGB+mask) and the "
                    "samples it is sure of keep every channel, in one .h5 of the same layout.")
    c.add_argument("scores", metavar="SCORES|RUN",
                   help="a CSV made by 'lienzo curate score', or a classify run folder to score FILE.h5 with")
    c.add_argument("data", nargs="?", metavar="FILE.h5",
                   help="after RUN: an HDF5 file to score and filter (e.g. made by coco-masks or mask-pairs)")
    c.add_argument("--out", help="folder of kept images (default: SCORES_kept beside SCORES); with RUN FILE.h5 an "
                                 ".h5 file (default: FILE_kept.h5 beside FILE.h5)")
    c.add_argument("--min-prob", type=probability,
                   help="probability threshold (the GAN thesis kept >= 0.75; RUN FILE.h5: default 0.75)")
    c.add_argument("--classes", help="comma-separated class names to keep (SCORES.csv)")
    c.add_argument("--by", choices=("predicted", "true"),
                   help="SCORES.csv: the class a kept image is filed under (default: predicted). RUN FILE.h5: "
                        "whose probability counts, the top-1 or the sample's own class matched by name (default: "
                        "true when the run knows every class of the file, else predicted)")
    c.add_argument("--copy", action="store_true", help="copy files instead of linking them (SCORES.csv)")
    _threads_flag(c, " or the run's config, with RUN FILE.h5")
    _json_flag(c)
    c.set_defaults(handler=_curate_filter)
    c = curate_verbs.add_parser("split", help="stratified train/val/test into folders or one .h5")
    c.add_argument("folder", help="images in FOLDER/<class>/")
    _legacy_out(c)
    c.add_argument("--out", help="a folder, or a .h5 file (default: FOLDER_split beside FOLDER)")
    c.add_argument("--val", type=fraction, default=0.1, help="default: 0.1")
    c.add_argument("--test", type=fraction, default=0.1, help="default: 0.1")
    c.add_argument("--seed", type=int, default=0, help="default: 0")
    c.add_argument("--size", type=positive_int, nargs=2, metavar=("H", "W"), help="HDF5: resize to H W (area)")
    c.add_argument("--channels", type=int, choices=(1, 3), help="HDF5: convert to 1 or 3 channels")
    _json_flag(c)
    c.set_defaults(handler=_curate_split)
    _add_curate_masks(curate_verbs)


def _add_curate_masks(curate_verbs) -> None:
    c = curate_verbs.add_parser("coco-masks", help="COCO instances -> one .h5 of RGB+mask samples (4 channels)")
    c.add_argument("annotations", help="a COCO instances JSON (instances_*.json)")
    c.add_argument("images", help="the folder of its image files")
    c.add_argument("--out", help="an .h5 file (default: ANNOTATIONS_masksS.h5 beside ANNOTATIONS, S the size)")
    c.add_argument("--size", type=positive_int, default=64, help="square side in pixels (default: 64)")
    c.add_argument("--min-area", type=probability, default=0.15,
                   help="keep instances covering at least this fraction of the (square) image (default: 0.15)")
    c.add_argument("--categories", help="comma-separated category names to keep (default: all)")
    c.add_argument("--strict", action="store_true", help="a listed image that is missing is an error, not skipped")
    _test_split_flags(c, "by whole images (no photo on both sides), per category")
    c.add_argument("--no-progress", action="store_true", help="no progress bar")
    _json_flag(c)
    c.set_defaults(handler=_curate_coco_masks)
    c = curate_verbs.add_parser("mask-pairs", help="images + masks of the same name -> one .h5 of RGB+mask samples")
    c.add_argument("images", help="a folder of images")
    c.add_argument("masks", help="a folder of their masks, same relative names (foreground > 127, or palette index > 0)")
    c.add_argument("--out", help="an .h5 file (default: IMAGES_masksS.h5 beside IMAGES, S the size)")
    c.add_argument("--size", type=positive_int, default=64, help="square side in pixels (default: 64)")
    c.add_argument("--min-fg", type=probability, default=0.05, help="least foreground fraction (default: 0.05)")
    c.add_argument("--max-fg", type=probability, default=0.6, help="most foreground fraction (default: 0.6)")
    c.add_argument("--max-border", type=probability, default=0.2,
                   help="most of the foreground on the 1-pixel image frame (default: 0.2)")
    c.add_argument("--largest-component", action="store_true", help="keep only each mask's largest connected region")
    c.add_argument("--label", default="object", help="the one class name of the samples (default: object)")
    _test_split_flags(c, "chosen per file")
    c.add_argument("--no-progress", action="store_true", help="no progress bar")
    _json_flag(c)
    c.set_defaults(handler=_curate_mask_pairs)


def _test_split_flags(c, how: str) -> None:
    """--test/--seed of coco-masks and mask-pairs: a held-out group, so a GAN's FID has unseen images to compare."""
    c.add_argument("--test", type=fraction, default=0.0,
                   help=f"hold out this share of the samples, {how}, as group 'test' beside 'train' "
                        "(default: 0, one split)")
    c.add_argument("--seed", type=int, default=0, help="seed of the --test split (default: 0)")


def _add_caption(verbs) -> None:
    p = verbs.add_parser("caption", help="use a caption run: describe images, search images, rank sentences")
    caption_verbs = p.add_subparsers(dest="caption_verb", required=True, metavar="WHAT")
    d = caption_verbs.add_parser("describe", help="generated captions for images (a showtell or attend run)")
    d.add_argument("run", help="a caption run folder")
    d.add_argument("images", nargs="+", help="image files of any size or mode")
    d.add_argument("--beam", type=positive_int, help="beam width (default: the run's caption.beam; 1 = greedy)")
    _threads_flag(d)
    _json_flag(d)
    d.set_defaults(handler=_caption_describe)
    s = caption_verbs.add_parser("search", help="images ranked by a sentence (a rank run)")
    s.add_argument("run", help="a caption run folder (caption.model: rank)")
    s.add_argument("sentence", help='e.g. "a dog runs on the grass"')
    s.add_argument("--images", required=True, metavar="FOLDER|FEATURES.h5",
                   help="a folder of images, or a features file the caption task cached for the same backbone and layer")
    s.add_argument("--top-k", type=positive_int, default=5, help="default: 5")
    _threads_flag(s)
    _json_flag(s)
    s.set_defaults(handler=_caption_search)
    a = caption_verbs.add_parser("annotate", help="sentences ranked for an image (a rank run)")
    a.add_argument("run", help="a caption run folder (caption.model: rank)")
    a.add_argument("image", help="an image file")
    a.add_argument("--sentences", required=True, metavar="FILE", help="a text file, one sentence per line")
    a.add_argument("--top-k", type=positive_int, default=5, help="default: 5")
    _threads_flag(a)
    _json_flag(a)
    a.set_defaults(handler=_caption_annotate)


def _add_study(verbs) -> None:
    p = verbs.add_parser("study", help="reproducible studies that print a table")
    study_verbs = p.add_subparsers(dest="study_verb", required=True, metavar="WHICH")
    s = study_verbs.add_parser("illustration", help="the thesis's three transfer steps on illustrated Fashion-MNIST")
    s.add_argument("--source", metavar="RUN", help="a lienzo run trained on Fashion-MNIST (default: train one)")
    s.add_argument("--out", default="runs/study_illustration",
                   help="study folder, a new name if taken (default: runs/study_illustration)")
    s.add_argument("--labelled-per-class", type=positive_int, default=100,
                   help="labelled target drawings per class (default: 100)")
    s.add_argument("--source-epochs", type=positive_int, default=10, help="default: 10")
    s.add_argument("--finetune-epochs", type=positive_int, default=30, help="default: 30")
    s.add_argument("--reinit", help="comma-separated patterns of the low layers to re-initialise "
                   "(default: the first convolution and its normalisation; ',' for none)")
    s.add_argument("--low-lr", type=positive_number, default=1e-2,
                   help="re-initialised layers and head (default: 0.01)")
    s.add_argument("--high-lr", type=positive_number, default=3e-3,
                   help="the layers kept from the source (default: 0.003)")
    s.add_argument("--max-test", type=positive_int, help="evaluate on a stratified sample of this many target images")
    s.add_argument("--data-root", help="Fashion-MNIST folder (default: Debian's)")
    s.add_argument("--seed", type=int, default=0, help="default: 0")
    s.add_argument("--no-progress", action="store_true", help="no progress bars")
    s.set_defaults(handler=_study)
    m = study_verbs.add_parser("masks", help="the GAN thesis's test: does the mask as a 4th channel help a WGAN-GP?",
                               description="Composites of Fashion-MNIST garments on photo crops (RGB + the garment's "
                                           "mask), a domain scorer trained on them, WGAN-GP with 3 and 4 channels at "
                                           "the same budget, and a table of IS/FID/KID with sample grids "
                                           "(~35 minutes on a 2-core CPU; --full: the paper's size, for a GPU).")
    m.add_argument("--out", default="runs/study_masks", help="study folder, a new name if taken (default: runs/study_masks)")
    m.add_argument("--full", action="store_true", help="64 px, 128 maps, 100k generator steps, 50,000 samples (a GPU)")
    m.add_argument("--steps", type=positive_int, help="generator steps of each GAN (default: 1200; --full 100000)")
    m.add_argument("--maps", type=positive_int, help="feature maps of generator and critic (default: 32; --full 128)")
    m.add_argument("--eval-samples", type=positive_int, help="samples scored per GAN (default: 5000; --full 50000)")
    m.add_argument("--scorer", metavar="RUN", help="a classifier run on the composites' RGB (default: train one)")
    m.add_argument("--data-root", help="Fashion-MNIST folder (default: Debian's)")
    m.add_argument("--seed", type=int, default=0, help="default: 0")
    m.add_argument("--no-progress", action="store_true", help="no progress bars")
    m.set_defaults(handler=_study_masks)
    c = study_verbs.add_parser("captions", help="the caption thesis's models on synthetic fashion scenes",
                               description="Fashion scenes (1-3 tinted Fashion-MNIST items on a 64x64 canvas, 5 "
                                           "template captions each), an AirNet image network trained on them, "
                                           "retrieval (rank) and generation (showtell) on its features, and a table "
                                           "against random ranking, greedy decoding and the nearest training "
                                           "image's caption (~11 minutes on a 2-core CPU).")
    c.add_argument("--out", default="runs/study_captions",
                   help="study folder, a new name if taken (default: runs/study_captions)")
    c.add_argument("--train", type=positive_int, help="training scenes (default: 6000)")
    c.add_argument("--epochs", type=positive_int, help="epochs of each caption model (default: rank 15, showtell 30)")
    c.add_argument("--data-root", help="Fashion-MNIST folder (default: Debian's)")
    c.add_argument("--seed", type=int, default=0, help="default: 0")
    c.add_argument("--no-progress", action="store_true", help="no progress bars")
    c.set_defaults(handler=_study_captions)


def _add_runs(verbs) -> None:
    p = verbs.add_parser("runs", help="the runs in a folder, one line each; `runs compare A B ...`: one HTML page",
                         description="lienzo runs [DIR]: task, architecture, data, epochs, main metric, time and "
                                     "state (finished, interrupted, running) of every run in DIR (default: runs). "
                                     "lienzo runs compare RUN RUN [...] --out FILE: a table and curves side by side.")
    p.add_argument("paths", nargs="*", metavar="DIR | compare RUN...",
                   help="the folder holding run folders (default: runs), or `compare` and two or more run folders")
    p.add_argument("--sort", choices=RUN_SORT_KEYS, default="created",
                   help="order of the list (main: best first; default: created)")
    p.add_argument("--out", help="compare: the HTML page to write (default: runs-compare.html, never overwritten)")
    _json_flag(p)
    p.set_defaults(handler=_runs)


# ---- printing -------------------------------------------------------------------------------------------

def _jsonable(value):
    """Results as JSON can hold them: paths as text, NaN/inf as null (as in the run folder's files)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item") and callable(value.item):  # numpy and torch scalars
        return _jsonable(value.item())
    return value


def print_json(value) -> None:
    """One JSON document on one line, so that outputs of several commands append to a JSON Lines file."""
    print(json.dumps(_jsonable(value)))


# How the well-known numbers of a results dict read in one line; any other number prints as `key value`.
RESULT_FORMATS = {"cross_entropy": "cross-entropy {:.4f}", "count": "({} images)"}


def _result_format(key: str, value) -> str:
    top_k = re.fullmatch(r"top(\d+)", key)  # top1, top5, top3 (curate score --top-k 3): fractions
    if top_k:
        return f"top-{top_k.group(1)} {{:.2%}}"
    return RESULT_FORMATS.get(key) or (f"{key} {{}}" if isinstance(value, int) else f"{key} {{:.4g}}")


def _result_rank(key: str, value) -> tuple[int, int]:
    """Where a number stands on the line: top-k fractions by k, other floats, other integers, the count."""
    top_k = re.fullmatch(r"top(\d+)", key)
    if top_k:
        return 0, int(top_k.group(1))
    if key == "count":
        return 3, 0
    return (1 if isinstance(value, float) else 2), 0


def format_results(result: dict) -> str:
    """The scalar numbers of a task's results dict on one line, headline first (nested values are in the
    JSON file): `top-1 85.00%  top-5 99.00%  cross-entropy 0.4123  (20 images)`.

    The order does not follow the dict's, which puts the count first; ties keep the dict's order."""
    numbers = [(key, value) for key, value in result.items()
               if isinstance(value, (int, float)) and not isinstance(value, bool) and key != "seconds"]
    numbers.sort(key=lambda item: _result_rank(*item))
    return "  ".join(_result_format(key, value).format(value) for key, value in numbers)


def _print_result(args: argparse.Namespace, value, format_text) -> None:
    """`value` as one line of JSON with --json, else as `format_text(value)` reads it."""
    if args.json:
        print_json(value)
    else:
        print(format_text(value))


def _print_evaluation(args: argparse.Namespace, result: dict, path) -> None:
    """An evaluation's results (`evaluate`, `svm evaluate`): one line of JSON, or the split's headline numbers."""
    if args.json:
        print_json({"split": args.split, "path": path, "results": result})
    else:
        print(f"{args.split}: {format_results(result)} -> {path}")


def _print_counts(counts: dict, out, as_json: bool) -> None:
    total = sum(counts.values())
    if as_json:
        print_json({"counts": counts, "total": total, "out": out})
        return
    for name, n in counts.items():
        print(f"{name:<30} {n:>6}")
    print(f"{'total':<30} {total:>6}")
    print(out)


# ---- settings shared by several verbs --------------------------------------------------------------------

def _override(overrides, key: str) -> str | None:
    """The last `key=value` among overrides that sets `key` (later ones win, as in the config), or None."""
    found = None
    for text in overrides or []:
        name, sep, _ = text.partition("=")
        if sep and name.strip() == key:
            found = text
    return found


def check_duplicate_settings(args: argparse.Namespace) -> None:
    """A flag and a key=value for the same config key must agree: neither silently overrides the other."""
    for dest, (flag, key) in FLAG_KEYS.items():
        value = getattr(args, dest, None)
        text = _override(getattr(args, "overrides", None), key)
        if value is not None and text is not None and text.partition("=")[2].strip() != str(value):
            raise ConfigError(f"{flag} {value} and {text.strip()} set the same thing: give only one of them")


def _config_file(args: argparse.Namespace) -> Path | None:
    """The config a verb works from: a run folder's config.yaml, or features' --config."""
    run = getattr(args, "run", None)
    if run is not None:
        path = Path(run) / "config.yaml"
        # Not a run folder (an SVM folder, or a missing one that the verb itself reports): no config.
        return path if path.is_file() else None
    config = getattr(args, "config", None)
    return Path(config) if config else None


def resolve_threads(args: argparse.Namespace) -> int | None:
    """CPU threads for a verb: --threads, else trainer.threads from the overrides, else from its config."""
    if not hasattr(args, "threads"):
        return None  # a verb without --threads (train applies trainer.threads itself)
    if args.threads is not None:
        return args.threads
    text = _override(getattr(args, "overrides", None), "trainer.threads")
    path = _config_file(args)
    if text is None and path is None:
        return None
    from lienzo.tasks import config_from_dict, load_config

    overrides = [text] if text is not None else []
    cfg = load_config(path, overrides) if path is not None else config_from_dict({}, overrides)
    return cfg.trainer.threads


@contextlib.contextmanager
def cpu_threads(count: int | None):
    """At most `count` CPU threads in torch and in numpy/scikit-learn's BLAS and OpenMP pools for the verb,
    then back as before (main() may run many verbs in one process)."""
    if count is None:
        yield
        return
    if count < 1:
        raise ConfigError(f"trainer.threads: must be at least 1, got {count}")
    import torch
    from threadpoolctl import threadpool_limits  # scikit-learn's own dependency

    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        with threadpool_limits(limits=count):
            yield
    finally:
        torch.set_num_threads(before)


def _beside(path: str, suffix: str) -> Path:
    """PATH with `suffix` added to its name, in the same folder ('imgs/' -> 'imgs_split')."""
    p = Path(path)
    if p.name in ("", ".", ".."):
        p = p.resolve()
    return p.with_name(p.name + suffix)


def _out(args: argparse.Namespace, default: Path) -> Path:
    """--out, or the old positional spelling, or the verb's stated default."""
    legacy = getattr(args, "legacy_out", None)
    if legacy is not None and args.out is not None:
        raise ConfigError(f"the output is given twice ({legacy} and --out {args.out}): give only --out")
    chosen = args.out or legacy
    return Path(chosen) if chosen is not None else default


# ---- the verbs ------------------------------------------------------------------------------------------

def _train(args) -> int:
    from lienzo.tasks import load_config
    from lienzo.train import train

    if args.resume:
        given = ([args.config] if args.config else []) + args.overrides
        files = [text for text in given if "=" not in text]
        if files:
            raise ConfigError(f"config files cannot be combined with --resume ({files[0]}): the run's own "
                              f"config.yaml is used; give changes as key=value overrides")
        train(resume=args.resume, overrides=given)
        return EXIT_OK
    if not args.config:
        raise ConfigError("train needs a CONFIG file (see configs/) or --resume RUN")
    train(load_config(args.config, args.overrides))
    return EXIT_OK


def _evaluate(args) -> int:
    from lienzo.evaluate import evaluate

    result, path = evaluate(args.run, args.overrides, split=args.split, samples=args.n)
    _print_evaluation(args, result, path)
    return EXIT_OK


def _sample(args) -> int:
    from lienzo.tasks.generate.sample import sample

    out = sample(args.run, n=args.n, seed=args.seed, out=args.out, interpolate=args.interpolate)
    print(out)
    return EXIT_OK


def _predict(args) -> int:
    if (Path(args.run) / "svm.joblib").is_file():
        from lienzo.transfer.estimators import predict_svm as predict
    else:
        from lienzo.tasks.classify.predict import predict

    results = predict(args.run, args.images, top_k=args.top_k)
    if args.json:
        print_json(results)
    else:
        for item in results:
            if "error" in item:
                print(f"{item['path']}: error: {item['error']}")
            else:
                best = ", ".join(f"{p['class']} {100 * p['probability']:.1f}%" if "probability" in p
                                 else f"{p['class']} ({p['score']:+.2f})" for p in item["predictions"])
                print(f"{item['path']}: {best}")
    failed = sum("error" in item for item in results)
    if failed:
        print(f"lienzo: {failed} of {len(results)} images could not be read; the others were predicted",
              file=sys.stderr)
        return EXIT_PARTIAL
    return EXIT_OK


def _models(args) -> int:
    from lienzo.catalog import catalog_kinds, format_models_table, read_catalog

    rows = read_catalog(args.pattern, args.kind)  # the registries as data: no torch import, well under 1 s
    if rows is not None and args.kind is not None and args.kind not in catalog_kinds():
        raise ConfigError(f"unknown kind of model '{args.kind}'; known: {', '.join(catalog_kinds())}")
    if rows is None:
        from lienzo.models.summary import models_table

        rows = models_table(args.pattern, args.kind)
    _print_result(args, rows, format_models_table)
    return EXIT_OK


# The task whose config section `model` a kind of model is set by in a training config.
_TASK_OF_KIND = {"classifier": "classify", "gan": "generate", "caption": "caption"}
_NOT_SETTINGS = ("arch", "pretrained")  # the positional ARCH; weights do not change the layers


def _model_settings(arch: str, overrides: list[str] = ()) -> dict:
    """Builder arguments from `model.*` key=value overrides, typed and checked as `lienzo train` does (an
    unknown key or a wrong type names the key); only the keys given, so the rest stay the builder's defaults."""
    from lienzo.config import parse_override
    from lienzo.models.registry import model_kind
    from lienzo.tasks import config_from_dict

    keys = []
    for text in overrides:
        path, _ = parse_override(text)
        if len(path) != 2 or path[0] != "model" or path[1] in _NOT_SETTINGS:
            raise ConfigError(f"lienzo summary {arch}: {text.strip()}: only model.* settings other than "
                              f"{', '.join('model.' + k for k in _NOT_SETTINGS)} (e.g. model.maps=32)")
        keys.append(path[1])
    if not keys:
        return {}
    cfg = config_from_dict({"task": _TASK_OF_KIND[model_kind(arch)], "model": {"arch": arch}}, list(overrides))
    return {key: getattr(cfg.model, key) for key in dict.fromkeys(keys)}


def _summary(args) -> int:
    from lienzo.models.summary import format_summary, summary

    _print_result(args, summary(args.arch, args.input, args.num_classes, _model_settings(args.arch, args.overrides)),
                  format_summary)
    return EXIT_OK


def _bench(args) -> int:
    from lienzo.bench import bench_train, format_bench

    result = bench_train(args.arch, args.batch_size, args.input, args.precision, args.steps, args.warmup,
                         overrides=args.overrides)
    _print_result(args, result, format_bench)
    return EXIT_OK


def _features(args) -> int:
    from lienzo.tasks import config_from_dict, load_config
    from lienzo.transfer.features import extract_features

    cfg = load_config(args.config, args.overrides) if args.config else config_from_dict({}, args.overrides)
    batch_size = args.batch_size or (cfg.data.batch_size if _override(args.overrides, "data.batch_size") else 64)
    out = args.out or f"{Path(args.backbone).name}_{args.layer}.h5"
    path = extract_features(args.backbone, args.layer, cfg.data, out, weights=args.weights, batch_size=batch_size,
                            precision=args.precision or cfg.trainer.precision, progress=not args.no_progress)
    print(path)
    return EXIT_OK


def _gamma(text: str):
    return [v if v in ("scale", "auto") else float(v) for v in text.split(",")]


def _svm_fit(args) -> int:
    from lienzo.runs import read_json
    from lienzo.transfer.svm import fit_svm

    try:
        c_values = [float(v) for v in args.c.split(",")]
        gamma = _gamma(args.gamma)
    except ValueError as err:
        raise ConfigError(f"--c/--gamma: {err}") from None
    out = fit_svm(args.features, args.out, kernels=args.kernels.split(","), C=c_values, gamma=gamma,
                  folds=args.folds, standardize=not args.no_standardize, linear_svc=args.linear_svc,
                  probability=args.probability, n_jobs=args.jobs, max_train=args.max_train)
    params = read_json(out / "params.json")
    if args.json:
        print_json({"out": out, **params})
    else:
        print(f"best {params['best_params']}  CV top-1 {100 * params['cv_score']:.2f} % "
              f"({params['folds']} folds) -> {out}")
    return EXIT_OK


def _svm_evaluate(args) -> int:
    from lienzo.transfer.svm import evaluate_svm

    result, path = evaluate_svm(args.model, args.features, args.split)
    _print_evaluation(args, result, path)
    return EXIT_OK


def _tsne(args) -> int:
    from lienzo.transfer.tsne import tsne

    print(tsne(args.features, args.out, args.split, args.max_points, into_run=args.into_run))
    return EXIT_OK


def _curate_match(args) -> int:
    from lienzo import curate

    out = _out(args, _beside(args.source, "_matched"))
    counts = curate.match(args.source, args.vocabulary, out, single_word=args.single_word,
                          min_images=args.min_images, copy=args.copy)
    _print_counts(counts, out, args.json)
    return EXIT_OK


def _curate_score(args) -> int:
    from lienzo import curate

    out = Path(args.out) if args.out else _beside(args.folder, ".scores.csv")
    per_class = curate.score(args.run, args.folder, out, args.top_k)
    if args.json:
        print_json({"classes": per_class, "out": out})
        return EXIT_OK
    for name, figures in per_class.items():
        print(f"{name:<30} {format_results(figures)}")
    print(out)
    return EXIT_OK


def _curate_filter(args) -> int:
    from lienzo import curate

    if args.data is not None and Path(args.data).suffix in (".h5", ".hdf5"):
        return _curate_filter_hdf5(args)
    args.legacy_out = args.data  # SCORES OUT: the old positional spelling of --out
    out = _out(args, _beside(str(Path(args.scores).with_suffix("")), "_kept"))
    classes = [c.strip() for c in args.classes.split(",")] if args.classes else None
    counts = curate.filter_scored(args.scores, out, min_prob=args.min_prob, classes=classes,
                                  by=args.by or "predicted", copy=args.copy)
    _print_counts(counts, out, args.json)
    return EXIT_OK


def _curate_filter_hdf5(args) -> int:
    """`curate filter RUN FILE.h5`: score the file's samples with a classify run, keep the sure ones."""
    from lienzo import curate

    if args.classes or args.copy:
        raise ConfigError("--classes and --copy apply to a scores CSV; `curate filter RUN FILE.h5` keeps samples "
                          "of every class into one .h5")
    out = Path(args.out) if args.out else _beside(str(Path(args.data).with_suffix("")), "_kept.h5")
    args.run = args.scores  # trainer.threads from the run's config, as `curate score` takes it
    with cpu_threads(resolve_threads(args)):
        result = curate.filter_hdf5(args.scores, args.data, out, by=args.by,
                                    min_prob=0.75 if args.min_prob is None else args.min_prob)
    _print_curated(result, out, args.json)
    return EXIT_OK


def _curate_coco_masks(args) -> int:
    from lienzo import curate

    out = Path(args.out) if args.out else _beside(str(Path(args.annotations).with_suffix("")), f"_masks{args.size}.h5")
    categories = [c.strip() for c in args.categories.split(",") if c.strip()] if args.categories else None
    result = curate.coco_masks(args.annotations, args.images, out, size=args.size, min_area=args.min_area,
                               categories=categories, strict=args.strict, test=args.test, seed=args.seed,
                               progress=not args.no_progress)
    _print_curated(result, out, args.json)
    return EXIT_OK


def _curate_mask_pairs(args) -> int:
    from lienzo import curate

    out = Path(args.out) if args.out else _beside(args.images, f"_masks{args.size}.h5")
    result = curate.mask_pairs(args.images, args.masks, out, size=args.size, min_fg=args.min_fg, max_fg=args.max_fg,
                               max_border=args.max_border, largest_component=args.largest_component,
                               label=args.label, test=args.test, seed=args.seed, progress=not args.no_progress)
    _print_curated(result, out, args.json)
    return EXIT_OK


def _print_curated(result: dict, out, as_json: bool) -> None:
    """Samples kept per class, then what was removed (per reason, or per class), the samples per group of a
    --test split, then the output file."""
    counts, removed = result["counts"], result["removed"]
    if as_json:
        print_json({"counts": counts, "total": sum(counts.values()), "removed": removed,
                    **({"split": result["split"]} if "split" in result else {}), "out": out})
        return
    for name, n in counts.items():
        print(f"{name:<30} {n:>6}")
    print(f"{'total':<30} {sum(counts.values()):>6}")
    for name, n in removed.items():
        print(f"{'removed: ' + name:<30} {n:>6}")
    for part, n in result.get("split", {}).items():  # coco-masks/mask-pairs --test: samples per group
        print(f"{'split: ' + part:<30} {n:>6}")
    print(out)


def _curate_split(args) -> int:
    from lienzo import curate

    out = _out(args, _beside(args.folder, "_split"))
    counts = curate.split(args.folder, out, val=args.val, test=args.test, seed=args.seed,
                          image_size=tuple(args.size) if args.size else None, channels=args.channels)
    _print_counts(counts, out, args.json)
    return EXIT_OK


def _caption_describe(args) -> int:
    from lienzo.tasks.caption.use import describe

    results = describe(args.run, args.images, beam=args.beam)
    if args.json:
        print_json(results)
    else:
        for item in results:
            print(f"{item['path']}: " + (f"error: {item['error']}" if "error" in item else item["caption"]))
    failed = sum("error" in item for item in results)
    if failed:
        print(f"lienzo: {failed} of {len(results)} images could not be read; the others were described", file=sys.stderr)
        return EXIT_PARTIAL
    return EXIT_OK


def _caption_search(args) -> int:
    from lienzo.tasks.caption.use import search

    return _print_ranked(args, search(args.run, args.sentence, args.images, top_k=args.top_k), "path")


def _caption_annotate(args) -> int:
    from lienzo.tasks.caption.use import annotate

    return _print_ranked(args, annotate(args.run, args.image, args.sentences, top_k=args.top_k), "sentence")


def _print_ranked(args, results: list[dict], what: str) -> int:
    """Ranked results (`caption search`, `caption annotate`): JSON, or one "score  item" line each, best first."""
    if args.json:
        print_json(results)
    else:
        for item in results:
            print(f"{item['score']:+.3f}  {item[what]}")
    return EXIT_OK


def _study(args) -> int:
    from lienzo.tasks.classify.study import StudySettings, format_table, illustration_study

    reinit = None if args.reinit is None else tuple(p.strip() for p in args.reinit.split(",") if p.strip())
    settings = StudySettings(args.labelled_per_class, args.source_epochs, args.finetune_epochs, reinit,
                             args.low_lr, args.high_lr, seed=args.seed, max_test=args.max_test)
    study = illustration_study(args.out, args.source, settings, data_root=args.data_root,
                               progress=not args.no_progress)
    print(format_table(study), end="")
    print(study["dir"])
    return EXIT_OK


def _study_masks(args) -> int:
    from lienzo.tasks.generate.study import FULL_SETTINGS, MasksStudySettings, format_table, masks_study, with_overrides

    base = FULL_SETTINGS if args.full else MasksStudySettings()
    settings = with_overrides(base, steps=args.steps, maps=args.maps, eval_samples=args.eval_samples, seed=args.seed)
    study = masks_study(args.out, settings, scorer=args.scorer, fashion_root=args.data_root,
                        progress=not args.no_progress)
    print(format_table(study), end="")
    print(study["dir"])
    return EXIT_OK


def _study_captions(args) -> int:
    from lienzo.tasks.caption.study import CaptionStudySettings, captions_study, format_table, with_overrides

    settings = with_overrides(CaptionStudySettings(), train=args.train, rank_epochs=args.epochs,
                              showtell_epochs=args.epochs, seed=args.seed)
    study = captions_study(args.out, settings, fashion_root=args.data_root, progress=not args.no_progress)
    print(format_table(study), end="")
    print(study["dir"])
    return EXIT_OK


def _runs(args) -> int:
    from lienzo.runs import list_runs, unique_path

    if args.paths[:1] == ["compare"]:
        from lienzo.report.compare import compare_runs

        out = Path(args.out) if args.out else unique_path(Path.cwd(), "runs-compare", ".html")
        page = compare_runs(args.paths[1:], out)
        if args.json:
            print_json({"page": page})
        else:
            print(f"comparison: {page.resolve()}")
        return EXIT_OK
    if len(args.paths) > 1:
        raise ConfigError(f"runs takes one folder (or `compare RUN RUN ...`), got {len(args.paths)}")
    _print_result(args, list_runs(args.paths[0] if args.paths else "runs", sort=args.sort), format_runs)
    return EXIT_OK


def format_runs(runs: list[dict]) -> str:
    """The runs as an aligned table, one line each."""
    header = ["run", "task", "arch", "data", "epochs", "metric", "value", "minutes", "state"]
    rows = [[r["name"], r["task"], r["arch"] or "–", r["data"] or "–", f"{r['epochs']}/{r['max_epochs']}" if r["max_epochs"] else str(r["epochs"]),
             r["metric"] or "–", "–" if r["main"] is None else f"{r['main']:.4g}", f"{r['seconds'] / 60:.1f}",
             r["state"]] for r in runs]
    if not rows:
        return "no runs"
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows)]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in [header, *rows])


# ---- entry point ----------------------------------------------------------------------------------------

# Lightning's package loggers (standalone and inside `lightning`); everything Lightning says goes through them.
LIGHTNING_LOGGERS = ("lightning.pytorch", "lightning.fabric", "pytorch_lightning", "lightning_fabric")


class _CurrentStderr(logging.StreamHandler):
    """Writes to sys.stderr as it is when a message comes (pytest's capture, a notebook's stream), not as it
    was when the handler was made: main() may run many times in one process."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self):
        return sys.stderr


def _not_a_tip(record: logging.LogRecord) -> bool:
    """False for Lightning's advertisements ("💡 Tip: ... try installing litlogger"), shown on every run."""
    return not record.getMessage().startswith("💡")


_LIGHTNING_HANDLER = _CurrentStderr()
_LIGHTNING_HANDLER.addFilter(_not_a_tip)


def _quiet_frameworks(debug: bool) -> None:
    """One line per message on stderr: lienzo's and Lightning's once each, plain, without tips or noise."""
    logging.basicConfig(level=logging.DEBUG if debug else logging.INFO, format="%(message)s", stream=sys.stderr)
    # `import lightning` hangs its own "INFO: ..." handler on the "lightning" logger; Lightning's records reached
    # that one and, passed on, ours too: every line twice. Stopping them one level below gives them one handler.
    # (Lightning sets these loggers' levels at import, so a level set here would not last: its INFO lines show.)
    for name in LIGHTNING_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers = [_LIGHTNING_HANDLER]  # also replaces one Lightning made if imported before any root handler
        logger.propagate = False
    if not debug:
        warnings.filterwarnings("ignore", module=r"lightning.*")
        warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
        warnings.filterwarnings("ignore", message=r".*on_after_batch_transfer.*")
        warnings.formatwarning = lambda message, category, *args, **kw: f"warning: {message}\n"


def run(args: argparse.Namespace) -> int:
    """Run the parsed verb with its settings applied; returns the exit code."""
    check_duplicate_settings(args)
    with cpu_threads(resolve_threads(args)):
        return args.handler(args)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    # key=value overrides may come after options too (`bench train resnet18 --steps 5 trainer.precision=32`)
    args, extra = parser.parse_known_args(argv)
    if extra:
        if hasattr(args, "overrides") and all("=" in e and not e.startswith("-") for e in extra):
            args.overrides = list(args.overrides or []) + extra
        else:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    _quiet_frameworks(args.debug)
    try:
        return run(args)
    except LienzoError as err:
        if args.debug:
            raise
        print(f"lienzo: error: {err}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("lienzo: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `lienzo models | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
