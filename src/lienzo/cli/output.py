"""How the verbs print: one line of JSON with --json (so outputs append to a JSON Lines file), else text."""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path


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


def print_result(args: argparse.Namespace, value, format_text) -> None:
    """`value` as one line of JSON with --json, else as `format_text(value)` reads it."""
    if args.json:
        print_json(value)
    else:
        print(format_text(value))


def print_evaluation(args: argparse.Namespace, result: dict, path) -> None:
    """An evaluation's results (`evaluate`, `svm evaluate`): one line of JSON, or the split's headline numbers."""
    if args.json:
        print_json({"split": args.split, "path": path, "results": result})
    else:
        print(f"{args.split}: {format_results(result)} -> {path}")


def print_counts(counts: dict, out, as_json: bool) -> None:
    """Files per class, the total, then where they went (`curate match`, `filter`, `split`)."""
    total = sum(counts.values())
    if as_json:
        print_json({"counts": counts, "total": total, "out": out})
        return
    for name, n in counts.items():
        print(f"{name:<30} {n:>6}")
    print(f"{'total':<30} {total:>6}")
    print(out)


def print_study(table: str, folder) -> None:
    """A study's table (ending in a newline), then its folder (`lienzo study ...`)."""
    print(table, end="")
    print(folder)


def print_per_image(results: list[dict], as_json: bool, format_line, done: str) -> int:
    """Print one line per image (or the JSON list); images that failed ("error") make the exit code 3
    and one line on stderr saying the others were `done` ("predicted", "described")."""
    from lienzo.cli.process import EXIT_OK, EXIT_PARTIAL

    if as_json:
        print_json(results)
    else:
        for item in results:
            print(f"{item['path']}: error: {item['error']}" if "error" in item else format_line(item))
    failed = sum("error" in item for item in results)
    if failed:
        print(f"lienzo: {failed} of {len(results)} images could not be read; the others were {done}", file=sys.stderr)
        return EXIT_PARTIAL
    return EXIT_OK
