"""`lienzo <verb>`: a thin face over the public functions. User mistakes exit with code 2 and one line."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import warnings

from . import __version__
from .errors import ConfigError, LienzoError


def _shape(text: str) -> tuple[int, int, int]:
    try:
        values = tuple(int(v) for v in text.replace("x", ",").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected C,H,W such as 3,32,32, got {text!r}") from None
    if len(values) != 3 or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected C,H,W such as 3,32,32, got {text!r}")
    return values


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lienzo", description="Deep learning on images.")
    parser.add_argument("--version", action="version", version=f"lienzo {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    p = verbs.add_parser("train", help="train a classifier from a config (or resume a run)")
    p.add_argument("config", nargs="?", help="YAML config (see configs/)")
    p.add_argument("overrides", nargs="*", help="key=value overrides, e.g. optim.lr=0.05")
    p.add_argument("--resume", metavar="RUN", help="continue RUN from its last.ckpt")

    p = verbs.add_parser("evaluate", help="re-evaluate a run, optionally on other data")
    p.add_argument("run")
    p.add_argument("overrides", nargs="*", help="data.* / trainer.* overrides")
    p.add_argument("--split", choices=("test", "val", "train"), default="test")

    p = verbs.add_parser("predict", help="predict classes of image files with a run's best model or an SVM")
    p.add_argument("run", help="a run folder, or an SVM folder made by 'lienzo svm fit'")
    p.add_argument("images", nargs="+")
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("--json", action="store_true", help="print JSON")

    p = verbs.add_parser("models", help="list the registered architectures with parameter counts")
    p.add_argument("pattern", nargs="?", default="*")

    p = verbs.add_parser("summary", help="each layer's output volume and parameters")
    p.add_argument("arch")
    p.add_argument("--input", type=_shape, default=(3, 224, 224), metavar="C,H,W")
    p.add_argument("--num-classes", type=int, default=None, help="default: 1000 from 64 px up, else 10")

    p = verbs.add_parser("bench", help="measure speed")
    bench_verbs = p.add_subparsers(dest="bench_verb", required=True, metavar="WHAT")
    b = bench_verbs.add_parser("train", help="training images/s through the Trainer path")
    b.add_argument("arch")
    b.add_argument("--batch-size", type=int, default=128)
    b.add_argument("--input", type=_shape, default=(3, 32, 32), metavar="C,H,W")
    b.add_argument("--precision", choices=("auto", "32", "bf16", "16"), default="auto")
    b.add_argument("--steps", type=int, default=20)
    b.add_argument("--warmup", type=int, default=3)
    b.add_argument("overrides", nargs="*", help="key=value overrides (trainer.*, model.*)")

    p = verbs.add_parser("features", help="deep features of a data source (HDF5)")
    feature_verbs = p.add_subparsers(dest="features_verb", required=True, metavar="WHAT")
    f = feature_verbs.add_parser("extract", help="backbone + layer + data source -> features.h5")
    f.add_argument("backbone", help="torchvision name (vgg19, resnet50, ...) or a lienzo run folder")
    f.add_argument("overrides", nargs="*", help="data.* keys naming the source, e.g. data.name=folder data.root=DIR")
    f.add_argument("--layer", default="penultimate", help="alias (fc6, fc7, pool5, penultimate, logits) or module name")
    f.add_argument("--weights", help="local .pth/.safetensors file, torchvision weights name in the hub cache, or run")
    f.add_argument("--config", help="YAML whose data section names the source")
    f.add_argument("--out", required=True, help="the .h5 file to write (never overwritten)")
    f.add_argument("--batch-size", type=int, default=64)
    f.add_argument("--precision", choices=("auto", "32", "bf16", "16"), default="auto")
    f.add_argument("--no-progress", action="store_true")

    p = verbs.add_parser("svm", help="SVM on deep features, chosen by cross-validation")
    svm_verbs = p.add_subparsers(dest="svm_verb", required=True, metavar="WHAT")
    f = svm_verbs.add_parser("fit", help="GridSearchCV over kernel, C, gamma on the training features")
    f.add_argument("features")
    f.add_argument("--out", default="runs/svm", help="model folder (a new name if taken)")
    f.add_argument("--kernels", default="linear,rbf,poly,sigmoid")
    f.add_argument("--C", default="0.01,0.1,1,10,100", help="comma-separated values of C")
    f.add_argument("--gamma", default="scale,1e-4,1e-3,1e-2")
    f.add_argument("--folds", type=int, default=5)
    f.add_argument("--no-standardize", action="store_true")
    f.add_argument("--linear-svc", action="store_true", help="LinearSVC (fast for many samples) instead of SVC")
    f.add_argument("--probability", action="store_true", help="Platt probabilities (cross-entropy in metrics)")
    f.add_argument("--jobs", type=int, default=-1)
    f.add_argument("--max-train", type=int, help="fit on a stratified sample of this many training features")
    e = svm_verbs.add_parser("evaluate", help="metrics.json schema for the SVM on a features split")
    e.add_argument("model")
    e.add_argument("features")
    e.add_argument("--split", default="test")

    p = verbs.add_parser("tsne", help="2-D t-SNE map of a features file, coloured by class")
    p.add_argument("features")
    p.add_argument("--out", help="PNG path (default: next to the features file)")
    p.add_argument("--split", default="train")
    p.add_argument("--max-points", type=int, default=3000)

    p = verbs.add_parser("curate", help="build datasets: match names, score, filter, split")
    curate_verbs = p.add_subparsers(dest="curate_verb", required=True, metavar="WHAT")
    c = curate_verbs.add_parser("match", help="file names + class vocabulary -> out/<class>/")
    c.add_argument("source")
    c.add_argument("out")
    c.add_argument("--vocabulary", default="imagenet", help="'imagenet' or a text file (synonyms after commas)")
    c.add_argument("--single-word", action="store_true", help="only classes named by one word")
    c.add_argument("--min-images", type=int, default=1)
    c.add_argument("--copy", action="store_true", help="copy files instead of linking them")
    c = curate_verbs.add_parser("score", help="a run's predictions over a folder -> CSV")
    c.add_argument("run")
    c.add_argument("folder")
    c.add_argument("--out", required=True, help="CSV path (per-class figures go to .classes.csv beside it)")
    c.add_argument("--top-k", type=int, default=5)
    c = curate_verbs.add_parser("filter", help="keep scored images by confidence or class")
    c.add_argument("scores")
    c.add_argument("out")
    c.add_argument("--min-prob", type=float, help="top-1 probability threshold (the GAN thesis kept >= 0.75)")
    c.add_argument("--classes", help="comma-separated class names to keep")
    c.add_argument("--by", choices=("predicted", "true"), default="predicted")
    c.add_argument("--copy", action="store_true")
    c = curate_verbs.add_parser("split", help="stratified train/val/test into folders or one .h5")
    c.add_argument("folder")
    c.add_argument("out", help="a folder, or a .h5 file")
    c.add_argument("--val", type=float, default=0.1)
    c.add_argument("--test", type=float, default=0.1)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--size", type=int, nargs=2, metavar=("H", "W"), help="HDF5: resize to H W (area)")
    c.add_argument("--channels", type=int, choices=(1, 3))

    p = verbs.add_parser("study", help="reproducible studies that print a table")
    study_verbs = p.add_subparsers(dest="study_verb", required=True, metavar="WHICH")
    s = study_verbs.add_parser("illustration", help="the thesis's three transfer steps on illustrated Fashion-MNIST")
    s.add_argument("--source", metavar="RUN", help="a lienzo run trained on Fashion-MNIST (default: train one)")
    s.add_argument("--out", default="runs/study_illustration", help="study folder (a new name if taken)")
    s.add_argument("--labelled-per-class", type=int, default=100, help="labelled target drawings per class")
    s.add_argument("--source-epochs", type=int, default=10)
    s.add_argument("--finetune-epochs", type=int, default=30)
    s.add_argument("--reinit", help="comma-separated patterns of the low layers to re-initialise "
                   "(default: the first convolution and its normalisation; ',' for none)")
    s.add_argument("--low-lr", type=float, default=1e-2, help="re-initialised layers and head")
    s.add_argument("--high-lr", type=float, default=3e-3, help="the layers kept from the source")
    s.add_argument("--max-test", type=int, help="evaluate on a stratified sample of this many target images")
    s.add_argument("--data-root", help="Fashion-MNIST folder (default: Debian's)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--no-progress", action="store_true")
    return parser


def _gamma(text: str):
    return [v if v in ("scale", "auto") else float(v) for v in text.split(",")]


def _quiet_frameworks(debug: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if debug else logging.INFO, format="%(message)s", stream=sys.stderr)
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "lightning_fabric", "pytorch_lightning"):
        logging.getLogger(name).setLevel(logging.INFO if debug else logging.WARNING)
    if not debug:
        warnings.filterwarnings("ignore", module=r"lightning.*")
        warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
        warnings.filterwarnings("ignore", message=r".*on_after_batch_transfer.*")
        warnings.formatwarning = lambda message, category, *args, **kw: f"warning: {message}\n"


def run(args: argparse.Namespace) -> int:
    if args.verb == "train":
        from .config import load_config
        from .train import train

        if args.resume:
            overrides = ([args.config] if args.config else []) + args.overrides
            train(resume=args.resume, overrides=overrides)
        else:
            if not args.config:
                raise ConfigError("train needs a CONFIG file (see configs/) or --resume RUN")
            train(load_config(args.config, args.overrides))
        return 0
    if args.verb == "evaluate":
        from .evaluate import evaluate

        result, path = evaluate(args.run, args.overrides, split=args.split)
        print(f"{args.split}: top-1 {100 * result['top1']:.2f} %  top-5 {100 * result['top5']:.2f} %  "
              f"cross-entropy {result['cross_entropy']:.4f}  ({result['count']} images) -> {path}")
        return 0
    if args.verb == "predict":
        from pathlib import Path

        if (Path(args.run) / "svm.joblib").is_file():
            from .transfer.estimators import predict_svm as predict
        else:
            from .predict import predict

        results = predict(args.run, args.images, top_k=args.top_k)
        if args.json:
            print(json.dumps(results, indent=2))
        else:
            for item in results:
                if "error" in item:
                    print(f"{item['path']}: error: {item['error']}")
                else:
                    best = ", ".join(f"{p['class']} {100 * p['probability']:.1f}%" if "probability" in p
                                     else f"{p['class']} ({p['score']:+.2f})" for p in item["predictions"])
                    print(f"{item['path']}: {best}")
        return 2 if any("error" in item for item in results) else 0
    if args.verb == "models":
        from .summary import models_table

        rows = models_table(args.pattern)
        print(f"{'name':<14}{'params 3x32x32/10':>20}{'params 3x224x224/1000':>24}  description")
        for row in rows:
            print(f"{row['name']:<14}{row['params_32px_10']:>20,}{row['params_224px_1000']:>24,}  {row['description']}")
        return 0
    if args.verb == "summary":
        from .summary import format_summary, summary

        print(format_summary(summary(args.arch, args.input, args.num_classes)))
        return 0
    if args.verb == "bench":
        from .bench import bench_train

        result = bench_train(args.arch, args.batch_size, args.input, args.precision, args.steps, args.warmup,
                             overrides=args.overrides)
        print(json.dumps(result))
        return 0
    if args.verb == "features":
        from .config import config_from_dict, load_config
        from .transfer.features import extract_features

        cfg = load_config(args.config, args.overrides) if args.config else config_from_dict({}, args.overrides)
        out = extract_features(args.backbone, args.layer, cfg.data, args.out, weights=args.weights,
                               batch_size=args.batch_size, precision=args.precision, progress=not args.no_progress)
        print(out)
        return 0
    if args.verb == "svm":
        from .transfer.svm import evaluate_svm, fit_svm

        if args.svm_verb == "fit":
            try:
                c_values = [float(v) for v in args.C.split(",")]
                gamma = _gamma(args.gamma)
            except ValueError as err:
                raise ConfigError(f"--C/--gamma: {err}") from None
            out = fit_svm(args.features, args.out, kernels=args.kernels.split(","), C=c_values, gamma=gamma,
                          folds=args.folds, standardize=not args.no_standardize, linear_svc=args.linear_svc,
                          probability=args.probability, n_jobs=args.jobs,
                          max_train=args.max_train)
            from .runs import read_json

            params = read_json(out / "params.json")
            print(f"best {params['best_params']}  CV top-1 {100 * params['cv_score']:.2f} % "
                  f"({params['folds']} folds) -> {out}")
            return 0
        result, path = evaluate_svm(args.model, args.features, args.split)
        print(f"{args.split}: top-1 {100 * result['top1']:.2f} %  top-5 {100 * result['top5']:.2f} %  "
              f"({result['count']} images) -> {path}")
        return 0
    if args.verb == "tsne":
        from .transfer.tsne import tsne

        print(tsne(args.features, args.out, args.split, args.max_points))
        return 0
    if args.verb == "curate":
        from . import curate

        if args.curate_verb == "match":
            counts = curate.match(args.source, args.vocabulary, args.out, single_word=args.single_word,
                                  min_images=args.min_images, copy=args.copy)
        elif args.curate_verb == "score":
            summary = curate.score(args.run, args.folder, args.out, args.top_k)
            for name, s in summary.items():
                print(f"{name:<30} {s['count']:>6}  top-1 {100 * s['top1']:6.2f} %  top-5 {100 * s['top5']:6.2f} %  "
                      f"cross-entropy {s['cross_entropy']:.3f}")
            print(args.out)
            return 0
        elif args.curate_verb == "filter":
            classes = [c.strip() for c in args.classes.split(",")] if args.classes else None
            counts = curate.filter_scored(args.scores, args.out, min_prob=args.min_prob, classes=classes, by=args.by,
                                          copy=args.copy)
        else:
            counts = curate.split(args.folder, args.out, val=args.val, test=args.test, seed=args.seed,
                                  image_size=tuple(args.size) if args.size else None, channels=args.channels)
        for name, n in counts.items():
            print(f"{name:<30} {n:>6}")
        print(f"{'total':<30} {sum(counts.values()):>6}")
        return 0
    if args.verb == "study":
        from .transfer.study import StudySettings, format_table, illustration_study

        if min(args.labelled_per_class, args.source_epochs, args.finetune_epochs) < 1:
            raise ConfigError("--labelled-per-class, --source-epochs and --finetune-epochs must be at least 1")
        settings = StudySettings(args.labelled_per_class, args.source_epochs, args.finetune_epochs,
                                 None if args.reinit is None else tuple(p.strip() for p in args.reinit.split(",") if p.strip()),
                                 args.low_lr,
                                 args.high_lr, seed=args.seed, max_test=args.max_test)
        study = illustration_study(args.out, args.source, settings, data_root=args.data_root,
                                   progress=not args.no_progress)
        print(format_table(study), end="")
        print(study["dir"])
        return 0
    raise AssertionError(args.verb)


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
        return 2
    except KeyboardInterrupt:
        print("lienzo: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
