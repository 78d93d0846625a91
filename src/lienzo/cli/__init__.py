"""`lienzo <verb>`: a thin face over the public functions.

One module per verb group, each with `add(verbs)` that adds its parsers and handlers; a handler parses its
arguments, calls one public function and prints what it returns (lienzo.cli.output). Shared argument types
and flags are in lienzo.cli.options, threads and logging in lienzo.cli.process.

Exit codes: 0 done; 2 a user mistake (one line, `--debug` for the traceback); 3 some inputs failed and
the rest were done (e.g. `predict` with unreadable files); 130 interrupted (Ctrl-C).

Only argparse, json and lienzo.errors load at start-up: torch, Lightning and scikit-learn are imported
inside the verbs that need them, so `lienzo --help` answers at once and `lienzo models` never loads Lightning.
"""

from __future__ import annotations

import argparse
import os
import sys

from lienzo import __version__
from lienzo.cli import caption, classify, curate, generate, models, runs, study, train, transfer
from lienzo.cli.options import check_duplicate_settings
from lienzo.cli.process import (EXIT_INTERRUPTED, EXIT_OK, EXIT_USER_ERROR, cpu_threads, quiet_frameworks,
                                resolve_threads)
from lienzo.errors import LienzoError

# The verb groups in the order `lienzo --help` lists their verbs.
GROUPS = (train, generate, classify, models, transfer, curate, caption, study, runs)


def build_parser() -> argparse.ArgumentParser:
    """The `lienzo` parser: every verb sets `handler`, the function that runs it."""
    parser = argparse.ArgumentParser(
        prog="lienzo", description="Deep learning on images.",
        epilog="exit codes: 0 done, 2 user error, 3 some inputs failed (the rest were done), 130 interrupted")
    parser.add_argument("--version", action="version", version=f"lienzo {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    for group in GROUPS:
        group.add(verbs)
    return parser


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
    quiet_frameworks(args.debug)
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
