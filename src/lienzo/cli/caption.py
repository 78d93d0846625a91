"""`lienzo caption describe|search|annotate`: use a caption run."""

from __future__ import annotations


from lienzo.cli.options import json_flag, positive_int, threads_flag
from lienzo.cli.output import print_json, print_per_image
from lienzo.cli.process import EXIT_OK


def add(verbs) -> None:
    p = verbs.add_parser("caption", help="use a caption run: describe images, search images, rank sentences")
    caption_verbs = p.add_subparsers(dest="caption_verb", required=True, metavar="WHAT")
    d = caption_verbs.add_parser("describe", help="generated captions for images (a showtell or attend run)")
    d.add_argument("run", help="a caption run folder")
    d.add_argument("images", nargs="+", help="image files of any size or mode")
    d.add_argument("--beam", type=positive_int, help="beam width (default: the run's caption.beam; 1 = greedy)")
    threads_flag(d)
    json_flag(d)
    d.set_defaults(handler=_describe)
    s = caption_verbs.add_parser("search", help="images ranked by a sentence (a rank run)")
    s.add_argument("run", help="a caption run folder (caption.model: rank)")
    s.add_argument("sentence", help='e.g. "a dog runs on the grass"')
    s.add_argument("--images", required=True, metavar="FOLDER|FEATURES.h5",
                   help="a folder of images, or a features file the caption task cached for the same backbone and layer")
    s.add_argument("--top-k", type=positive_int, default=5, help="default: 5")
    threads_flag(s)
    json_flag(s)
    s.set_defaults(handler=_search)
    a = caption_verbs.add_parser("annotate", help="sentences ranked for an image (a rank run)")
    a.add_argument("run", help="a caption run folder (caption.model: rank)")
    a.add_argument("image", help="an image file")
    a.add_argument("--sentences", required=True, metavar="FILE", help="a text file, one sentence per line")
    a.add_argument("--top-k", type=positive_int, default=5, help="default: 5")
    threads_flag(a)
    json_flag(a)
    a.set_defaults(handler=_annotate)


def _describe(args) -> int:
    from lienzo.tasks.caption.use import describe

    results = describe(args.run, args.images, beam=args.beam)
    return print_per_image(results, args.json, lambda item: f"{item['path']}: {item['caption']}", "described")


def _search(args) -> int:
    from lienzo.tasks.caption.use import search

    _print_ranked(args, search(args.run, args.sentence, args.images, top_k=args.top_k), "path")
    return EXIT_OK


def _annotate(args) -> int:
    from lienzo.tasks.caption.use import annotate

    _print_ranked(args, annotate(args.run, args.image, args.sentences, top_k=args.top_k), "sentence")
    return EXIT_OK


def _print_ranked(args, results: list[dict], what: str) -> None:
    """Ranked results (`caption search`, `caption annotate`): JSON, or one "score  item" line each, best first."""
    if args.json:
        print_json(results)
    else:
        for item in results:
            print(f"{item['score']:+.3f}  {item[what]}")
