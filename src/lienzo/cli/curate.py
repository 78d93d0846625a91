"""`lienzo curate`: build datasets (match names, score, filter, split, RGB+mask files)."""

from __future__ import annotations

from pathlib import Path

from lienzo.cli.options import (beside, fraction, json_flag, legacy_out_arg, out_path, positive_int, probability,
                                threads_flag)
from lienzo.cli.output import format_results, print_counts, print_json
from lienzo.cli.process import EXIT_OK, cpu_threads, resolve_threads
from lienzo.errors import ConfigError


def add(verbs) -> None:
    p = verbs.add_parser("curate", help="build datasets: match names, score, filter, split, RGB+mask files")
    curate_verbs = p.add_subparsers(dest="curate_verb", required=True, metavar="WHAT")
    c = curate_verbs.add_parser("match", help="file names + class vocabulary -> OUT/<class>/")
    c.add_argument("source", help="a folder of images named by what they show")
    legacy_out_arg(c)
    c.add_argument("--out", help="the class folders' parent (default: SOURCE_matched beside SOURCE)")
    c.add_argument("--vocabulary", default="imagenet", help="'imagenet' or a text file (synonyms after commas)")
    c.add_argument("--single-word", action="store_true", help="only classes named by one word")
    c.add_argument("--min-images", type=positive_int, default=1, help="drop smaller classes (default: 1)")
    c.add_argument("--copy", action="store_true", help="copy files instead of linking them")
    json_flag(c)
    c.set_defaults(handler=_match)
    c = curate_verbs.add_parser("score", help="a run's predictions over a folder -> CSV")
    c.add_argument("run", help="a run folder made by 'lienzo train'")
    c.add_argument("folder", help="images in FOLDER/<class>/ or directly in FOLDER")
    c.add_argument("--out", help="CSV path; per-class figures go to .classes.csv beside it "
                                 "(default: FOLDER.scores.csv beside FOLDER)")
    c.add_argument("--top-k", type=positive_int, default=5, help="classes per image (default: 5)")
    threads_flag(c, " or the run's config")
    json_flag(c)
    c.set_defaults(handler=_score)
    _add_filter(curate_verbs)
    c = curate_verbs.add_parser("split", help="stratified train/val/test into folders or one .h5")
    c.add_argument("folder", help="images in FOLDER/<class>/")
    legacy_out_arg(c)
    c.add_argument("--out", help="a folder, or a .h5 file (default: FOLDER_split beside FOLDER)")
    c.add_argument("--val", type=fraction, default=0.1, help="default: 0.1")
    c.add_argument("--test", type=fraction, default=0.1, help="default: 0.1")
    c.add_argument("--seed", type=int, default=0, help="default: 0")
    c.add_argument("--size", type=positive_int, nargs=2, metavar=("H", "W"), help="HDF5: resize to H W (area)")
    c.add_argument("--channels", type=int, choices=(1, 3), help="HDF5: convert to 1 or 3 channels")
    json_flag(c)
    c.set_defaults(handler=_split)
    _add_masks(curate_verbs)


def _add_filter(curate_verbs) -> None:
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
    threads_flag(c, " or the run's config, with RUN FILE.h5")
    json_flag(c)
    c.set_defaults(handler=_filter)


def _add_masks(curate_verbs) -> None:
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
    json_flag(c)
    c.set_defaults(handler=_coco_masks)
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
    json_flag(c)
    c.set_defaults(handler=_mask_pairs)


def _test_split_flags(c, how: str) -> None:
    """--test/--seed of coco-masks and mask-pairs: a held-out group, so a GAN's FID has unseen images to compare."""
    c.add_argument("--test", type=fraction, default=0.0,
                   help=f"hold out this share of the samples, {how}, as group 'test' beside 'train' "
                        "(default: 0, one split)")
    c.add_argument("--seed", type=int, default=0, help="seed of the --test split (default: 0)")


# ---- the handlers ---------------------------------------------------------------------------------------

def _match(args) -> int:
    from lienzo import curate

    out = out_path(args, beside(args.source, "_matched"))
    counts = curate.match(args.source, args.vocabulary, out, single_word=args.single_word,
                          min_images=args.min_images, copy=args.copy)
    print_counts(counts, out, args.json)
    return EXIT_OK


def _score(args) -> int:
    from lienzo import curate

    out = Path(args.out) if args.out else beside(args.folder, ".scores.csv")
    per_class = curate.score(args.run, args.folder, out, args.top_k)
    if args.json:
        print_json({"classes": per_class, "out": out})
        return EXIT_OK
    for name, figures in per_class.items():
        print(f"{name:<30} {format_results(figures)}")
    print(out)
    return EXIT_OK


def _filter(args) -> int:
    """`curate filter SCORES.csv [OUT]` keeps scored image files; `curate filter RUN FILE.h5` scores and keeps
    an HDF5 file's samples: which one, the second positional's suffix says."""
    from lienzo import curate

    if args.data is not None and Path(args.data).suffix in (".h5", ".hdf5"):
        return _filter_hdf5(args)
    args.legacy_out = args.data  # SCORES OUT: the old positional spelling of --out
    out = out_path(args, beside(str(Path(args.scores).with_suffix("")), "_kept"))
    classes = [c.strip() for c in args.classes.split(",")] if args.classes else None
    counts = curate.filter_scored(args.scores, out, min_prob=args.min_prob, classes=classes,
                                  by=args.by or "predicted", copy=args.copy)
    print_counts(counts, out, args.json)
    return EXIT_OK


def _filter_hdf5(args) -> int:
    """`curate filter RUN FILE.h5`: score the file's samples with a classify run, keep the sure ones."""
    from lienzo import curate

    if args.classes or args.copy:
        raise ConfigError("--classes and --copy apply to a scores CSV; `curate filter RUN FILE.h5` keeps samples "
                          "of every class into one .h5")
    out = Path(args.out) if args.out else beside(str(Path(args.data).with_suffix("")), "_kept.h5")
    args.run = args.scores  # trainer.threads from the run's config, as `curate score` takes it
    with cpu_threads(resolve_threads(args)):
        result = curate.filter_hdf5(args.scores, args.data, out, by=args.by,
                                    min_prob=0.75 if args.min_prob is None else args.min_prob)
    _print_curated(result, out, args.json)
    return EXIT_OK


def _coco_masks(args) -> int:
    from lienzo import curate

    out = Path(args.out) if args.out else beside(str(Path(args.annotations).with_suffix("")), f"_masks{args.size}.h5")
    categories = [c.strip() for c in args.categories.split(",") if c.strip()] if args.categories else None
    result = curate.coco_masks(args.annotations, args.images, out, size=args.size, min_area=args.min_area,
                               categories=categories, strict=args.strict, test=args.test, seed=args.seed,
                               progress=not args.no_progress)
    _print_curated(result, out, args.json)
    return EXIT_OK


def _mask_pairs(args) -> int:
    from lienzo import curate

    out = Path(args.out) if args.out else beside(args.images, f"_masks{args.size}.h5")
    result = curate.mask_pairs(args.images, args.masks, out, size=args.size, min_fg=args.min_fg, max_fg=args.max_fg,
                               max_border=args.max_border, largest_component=args.largest_component,
                               label=args.label, test=args.test, seed=args.seed, progress=not args.no_progress)
    _print_curated(result, out, args.json)
    return EXIT_OK


def _split(args) -> int:
    from lienzo import curate

    out = out_path(args, beside(args.folder, "_split"))
    counts = curate.split(args.folder, out, val=args.val, test=args.test, seed=args.seed,
                          image_size=tuple(args.size) if args.size else None, channels=args.channels)
    print_counts(counts, out, args.json)
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
