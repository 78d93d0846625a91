"""`lienzo predict`: classes of image files, by a classify run or an SVM folder."""

from __future__ import annotations


from lienzo.cli.options import json_flag, positive_int, threads_flag
from lienzo.cli.output import print_per_image


def add(verbs) -> None:
    p = verbs.add_parser("predict", help="predict classes of image files with a run's best model or an SVM")
    p.add_argument("run", help="a run folder, or an SVM folder made by 'lienzo svm fit'")
    p.add_argument("images", nargs="+", help="image files (any size and mode)")
    p.add_argument("--top-k", type=positive_int, default=5, help="classes per image (default: 5)")
    threads_flag(p, " or the run's config")
    json_flag(p)
    p.set_defaults(handler=_predict)


def _predict(args) -> int:
    from lienzo.tasks.classify.predict import predict

    results = predict(args.run, args.images, top_k=args.top_k)
    return print_per_image(results, args.json, format_prediction, "predicted")


def format_prediction(item: dict) -> str:
    """`shoe.png: sneaker 91.2%, sandal 6.0%`: a probability, or an SVM's decision value without one."""
    if "error" in item:
        return f"{item['path']}: error: {item['error']}"
    best = ", ".join(f"{p['class']} {100 * p['probability']:.1f}%" if "probability" in p
                     else f"{p['class']} ({p['score']:+.2f})" for p in item["predictions"])
    return f"{item['path']}: {best}"
