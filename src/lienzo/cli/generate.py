"""`lienzo sample`: images from a generate run."""

from __future__ import annotations

from lienzo.cli.options import positive_int, threads_flag
from lienzo.cli.process import EXIT_OK


def add(verbs) -> None:
    p = verbs.add_parser("sample", help="draw samples from a generate run: a grid, PNG files or an HDF5 file")
    p.add_argument("run", help="a generate run folder")
    p.add_argument("--n", type=positive_int, default=64, help="samples (default: 64)")
    p.add_argument("--seed", type=int, default=0, help="noise seed (default: 0)")
    p.add_argument("--out", help="grid.png, a folder/ (one PNG each, RGBA for RGB+mask) or file.h5 "
                                 "(default: RUN/samples/samples-seedS.png)")
    p.add_argument("--interpolate", action="store_true", help="rows of 8 samples walking between two noise vectors")
    threads_flag(p, " or the run's config")
    p.set_defaults(handler=_sample)


def _sample(args) -> int:
    from lienzo.tasks.generate.sample import sample

    print(sample(args.run, n=args.n, seed=args.seed, out=args.out, interpolate=args.interpolate))
    return EXIT_OK
