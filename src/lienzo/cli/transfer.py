"""`lienzo features`, `lienzo svm` and `lienzo tsne`: deep features of a pretrained network, an SVM on them,
and a map of them."""

from __future__ import annotations

import argparse
from pathlib import Path

from lienzo.cli.options import (PRECISIONS, find_override, int_at_least, json_flag, overrides_arg, positive_int,
                                threads_flag)
from lienzo.cli.output import print_evaluation, print_json
from lienzo.cli.process import EXIT_OK
from lienzo.errors import ConfigError


def add(verbs) -> None:
    p = verbs.add_parser("features", help="deep features of a data source (HDF5)")
    feature_verbs = p.add_subparsers(dest="features_verb", required=True, metavar="WHAT")
    f = feature_verbs.add_parser("extract", help="backbone + layer + data source -> features.h5")
    f.add_argument("backbone", help="torchvision name (vgg19, resnet50, ...) or a lienzo run folder")
    overrides_arg(f, "data.* keys naming the source, e.g. data.name=folder data.root=DIR")
    f.add_argument("--layer", default="penultimate",
                   help="alias (fc6, fc7, pool5, penultimate, logits) or module name (default: penultimate)")
    f.add_argument("--weights", help="local .pth/.safetensors file, torchvision weights name in the hub cache, or run")
    f.add_argument("--config", help="YAML whose data section names the source")
    f.add_argument("--out", help="the .h5 file to write, never overwritten (default: BACKBONE_LAYER.h5 here)")
    f.add_argument("--batch-size", type=positive_int, help="same as data.batch_size (default: 64)")
    f.add_argument("--precision", choices=PRECISIONS, help="same as trainer.precision (default: auto)")
    threads_flag(f, " or --config's")
    f.add_argument("--no-progress", action="store_true", help="no progress bar")
    f.set_defaults(handler=_features)
    _add_svm(verbs)
    _add_tsne(verbs)


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
    threads_flag(f)
    json_flag(f)
    f.set_defaults(handler=_svm_fit)
    e = svm_verbs.add_parser("evaluate", help="metrics.json schema for the SVM on a features split")
    e.add_argument("model", help="an SVM folder made by 'lienzo svm fit'")
    e.add_argument("features", help="a features .h5 file (results go to MODEL/evaluations/)")
    e.add_argument("--split", default="test", help="default: test")
    threads_flag(e)
    json_flag(e)
    e.set_defaults(handler=_svm_evaluate)


def _add_tsne(verbs) -> None:
    p = verbs.add_parser("tsne", help="2-D t-SNE map of a features file, coloured by class")
    p.add_argument("features", help="a features .h5 file made by 'lienzo features extract'")
    p.add_argument("--out", help="PNG path (default: FEATURES.SPLIT.tsne.png next to the features file)")
    p.add_argument("--into-run", action="store_true",
                   help="instead, put the map into the plots and report.html of the run whose network made the features")
    p.add_argument("--split", default="train", help="default: train")
    p.add_argument("--max-points", type=positive_int, default=3000, help="stratified sample size (default: 3000)")
    threads_flag(p)
    p.set_defaults(handler=_tsne)


def _features(args) -> int:
    from lienzo.tasks import config_from_dict, load_config
    from lienzo.transfer.features import extract_features

    # The data source comes from --config and key=value overrides; --batch-size and --precision are flags
    # for config keys, and the batch size is 64 unless one of them sets it.
    cfg = load_config(args.config, args.overrides) if args.config else config_from_dict({}, args.overrides)
    batch_size = args.batch_size or (cfg.data.batch_size if find_override(args.overrides, "data.batch_size") else 64)
    out = args.out or f"{Path(args.backbone).name}_{args.layer}.h5"
    print(extract_features(args.backbone, args.layer, cfg.data, out, weights=args.weights, batch_size=batch_size,
                           precision=args.precision or cfg.trainer.precision, progress=not args.no_progress))
    return EXIT_OK


def _svm_fit(args) -> int:
    from lienzo.runs import read_json
    from lienzo.transfer.svm import fit_svm

    try:
        c_values = [float(v) for v in args.c.split(",")]
        gamma = [v if v in ("scale", "auto") else float(v) for v in args.gamma.split(",")]
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
    print_evaluation(args, result, path)
    return EXIT_OK


def _tsne(args) -> int:
    from lienzo.transfer.tsne import tsne

    print(tsne(args.features, args.out, args.split, args.max_points, into_run=args.into_run))
    return EXIT_OK
