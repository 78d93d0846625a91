"""`lienzo models`, `lienzo summary` and `lienzo bench`: the registered architectures, their layers, their speed."""

from __future__ import annotations

from lienzo.cli.options import (PRECISIONS, image_shape, json_flag, nonnegative_int, overrides_arg, positive_int,
                                threads_flag)
from lienzo.cli.output import print_result
from lienzo.cli.process import EXIT_OK


def add(verbs) -> None:
    p = verbs.add_parser("models", help="list the registered architectures by kind, with parameter counts")
    p.add_argument("pattern", nargs="?", default="*", help="shell pattern such as 'res*' (default: all)")
    p.add_argument("--kind", help="only this kind of model, e.g. classifier (default: every kind)")
    json_flag(p)
    p.set_defaults(handler=_models)

    p = verbs.add_parser("summary", help="each layer's output volume and parameters")
    p.add_argument("arch", help="a registered architecture (see 'lienzo models')")
    p.add_argument("--input", type=image_shape, default=None, metavar="C,H,W",
                   help="image shape (default: 3,224,224 for a classifier, 3,32,32 for a GAN)")
    p.add_argument("--num-classes", type=positive_int, default=None,
                   help="a classifier's classes (default: 1000 from 64 px up, else 10)")
    json_flag(p)
    overrides_arg(p, "model.* settings as in a config, e.g. model.maps=32 model.z_dim=64 or model.variant=imagenet")
    p.set_defaults(handler=_summary)

    p = verbs.add_parser("bench", help="measure speed")
    bench_verbs = p.add_subparsers(dest="bench_verb", required=True, metavar="WHAT")
    b = bench_verbs.add_parser("train", help="training images/s through the Trainer path")
    b.add_argument("arch", help="a registered architecture (see 'lienzo models')")
    b.add_argument("--batch-size", type=positive_int, help="same as data.batch_size (default: 128)")
    b.add_argument("--input", type=image_shape, default=(3, 32, 32), metavar="C,H,W", help="default: 3,32,32")
    b.add_argument("--precision", choices=PRECISIONS, help="same as trainer.precision (default: auto)")
    b.add_argument("--steps", type=positive_int, default=20, help="measured steps (default: 20)")
    b.add_argument("--warmup", type=nonnegative_int, default=3, help="unmeasured steps first (default: 3)")
    threads_flag(b)
    json_flag(b)
    overrides_arg(b, "key=value overrides (trainer.*, model.*)")
    b.set_defaults(handler=_bench)


def _models(args) -> int:
    from lienzo.cli.catalog import format_models_table, model_rows  # the registries as data: no torch import

    print_result(args, model_rows(args.pattern, args.kind), format_models_table)
    return EXIT_OK


def _summary(args) -> int:
    from lienzo.models.summary import format_summary, summary
    from lienzo.tasks.model_settings import model_settings

    settings = model_settings(args.arch, args.overrides)  # model.maps=32 -> {"maps": 32}, typed as in training
    print_result(args, summary(args.arch, args.input, args.num_classes, settings), format_summary)
    return EXIT_OK


def _bench(args) -> int:
    from lienzo.bench import bench_train, format_bench

    result = bench_train(args.arch, args.batch_size, args.input, args.precision, args.steps, args.warmup,
                         overrides=args.overrides)
    print_result(args, result, format_bench)
    return EXIT_OK
