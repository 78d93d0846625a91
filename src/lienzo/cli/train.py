"""`lienzo train` and `lienzo evaluate`: the spine's two verbs."""

from __future__ import annotations

from lienzo.cli.options import json_flag, overrides_arg, positive_int, threads_flag
from lienzo.cli.output import print_evaluation
from lienzo.cli.process import EXIT_OK
from lienzo.errors import ConfigError


def add(verbs) -> None:
    p = verbs.add_parser("train", help="train from a config (or resume a run)",
                         description="Train from a YAML config with key=value overrides, or continue a run "
                                     "with --resume RUN: then RUN's config.yaml is used and only key=value "
                                     "overrides may follow (a config file with --resume is an error).")
    p.add_argument("config", nargs="?", help="YAML config (see configs/); not with --resume")
    overrides_arg(p, "overrides, e.g. optim.lr=0.05 trainer.max_epochs=5")
    p.add_argument("--resume", metavar="RUN", help="continue RUN from its last.ckpt (key=value overrides only)")
    p.set_defaults(handler=_train)

    p = verbs.add_parser("evaluate", help="re-evaluate a run, optionally on other data")
    p.add_argument("run", help="a run folder made by 'lienzo train'")
    overrides_arg(p, "data.* / trainer.* overrides (results go to RUN/evaluations/)")
    p.add_argument("--split", choices=("test", "val", "train"), default="test", help="default: test")
    p.add_argument("--n", type=positive_int, help="generate runs: samples scored (default: 50,000, the paper's)")
    threads_flag(p, " or the run's config")
    json_flag(p)
    p.set_defaults(handler=_evaluate)


def _train(args) -> int:
    from lienzo.tasks import load_config
    from lienzo.train import train

    if args.resume:
        # With --resume, the CONFIG positional can only be a key=value that argparse took for it.
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
    print_evaluation(args, result, path)
    return EXIT_OK
