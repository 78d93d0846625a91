"""`lienzo runs`: the runs in a folder, one line each; `lienzo runs compare`: several runs on one page."""

from __future__ import annotations

from pathlib import Path

from lienzo.cli.options import json_flag
from lienzo.cli.output import print_json, print_result
from lienzo.cli.process import EXIT_OK
from lienzo.errors import ConfigError
from lienzo.runs import RUN_SORT_KEYS


def add(verbs) -> None:
    p = verbs.add_parser("runs", help="the runs in a folder, one line each; `runs compare A B ...`: one HTML page",
                         description="lienzo runs [DIR]: task, architecture, data, epochs, main metric, time and "
                                     "state (finished, interrupted, running) of every run in DIR (default: runs). "
                                     "lienzo runs compare RUN RUN [...] --out FILE: a table and curves side by side.")
    p.add_argument("paths", nargs="*", metavar="DIR | compare RUN...",
                   help="the folder holding run folders (default: runs), or `compare` and two or more run folders")
    p.add_argument("--sort", choices=RUN_SORT_KEYS, default="created",
                   help="order of the list (main: best first; default: created)")
    p.add_argument("--out", help="compare: the HTML page to write (default: runs-compare.html, never overwritten)")
    json_flag(p)
    p.set_defaults(handler=_runs)


def _runs(args) -> int:
    if args.paths[:1] == ["compare"]:
        return _compare(args)
    if len(args.paths) > 1:
        raise ConfigError(f"runs takes one folder (or `compare RUN RUN ...`), got {len(args.paths)}")
    from lienzo.runs import list_runs

    print_result(args, list_runs(args.paths[0] if args.paths else "runs", sort=args.sort), format_runs)
    return EXIT_OK


def _compare(args) -> int:
    from lienzo.report.compare import compare_runs
    from lienzo.runs import unique_path

    out = Path(args.out) if args.out else unique_path(Path.cwd(), "runs-compare", ".html")
    page = compare_runs(args.paths[1:], out)
    if args.json:
        print_json({"page": page})
    else:
        print(f"comparison: {page.resolve()}")
    return EXIT_OK


def format_runs(runs: list[dict]) -> str:
    """The runs as an aligned table, one line each."""
    header = ["run", "task", "arch", "data", "epochs", "metric", "value", "minutes", "state"]
    rows = [[r["name"], r["task"], r["arch"] or "–", r["data"] or "–",
             f"{r['epochs']}/{r['max_epochs']}" if r["max_epochs"] else str(r["epochs"]),
             r["metric"] or "–", "–" if r["main"] is None else f"{r['main']:.4g}", f"{r['seconds'] / 60:.1f}",
             r["state"]] for r in runs]
    if not rows:
        return "no runs"
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows)]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in [header, *rows])
