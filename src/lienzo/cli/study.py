"""`lienzo study illustration|masks|captions`: the reproducible studies, each printing a table."""

from __future__ import annotations

from lienzo.cli.options import positive_int, positive_number
from lienzo.cli.output import print_study
from lienzo.cli.process import EXIT_OK


def add(verbs) -> None:
    p = verbs.add_parser("study", help="reproducible studies that print a table")
    study_verbs = p.add_subparsers(dest="study_verb", required=True, metavar="WHICH")
    s = study_verbs.add_parser("illustration", help="the thesis's three transfer steps on illustrated Fashion-MNIST")
    s.add_argument("--source", metavar="RUN", help="a lienzo run trained on Fashion-MNIST (default: train one)")
    s.add_argument("--out", default="runs/study_illustration",
                   help="study folder, a new name if taken (default: runs/study_illustration)")
    s.add_argument("--labelled-per-class", type=positive_int, default=100,
                   help="labelled target drawings per class (default: 100)")
    s.add_argument("--source-epochs", type=positive_int, default=10, help="default: 10")
    s.add_argument("--finetune-epochs", type=positive_int, default=30, help="default: 30")
    s.add_argument("--reinit", help="comma-separated patterns of the low layers to re-initialise "
                   "(default: the first convolution and its normalisation; ',' for none)")
    s.add_argument("--low-lr", type=positive_number, default=1e-2,
                   help="re-initialised layers and head (default: 0.01)")
    s.add_argument("--high-lr", type=positive_number, default=3e-3,
                   help="the layers kept from the source (default: 0.003)")
    s.add_argument("--max-test", type=positive_int, help="evaluate on a stratified sample of this many target images")
    _common(s)
    s.set_defaults(handler=_illustration)
    m = study_verbs.add_parser("masks", help="the GAN thesis's test: does the mask as a 4th channel help a WGAN-GP?",
                               description="Composites of Fashion-MNIST garments on photo crops (RGB + the garment's "
                                           "mask), a domain scorer trained on them, WGAN-GP with 3 and 4 channels at "
                                           "the same budget, and a table of IS/FID/KID with sample grids "
                                           "(~35 minutes on a 2-core CPU; --full: the paper's size, for a GPU).")
    m.add_argument("--out", default="runs/study_masks", help="study folder, a new name if taken (default: runs/study_masks)")
    m.add_argument("--full", action="store_true", help="64 px, 128 maps, 100k generator steps, 50,000 samples (a GPU)")
    m.add_argument("--steps", type=positive_int, help="generator steps of each GAN (default: 1200; --full 100000)")
    m.add_argument("--maps", type=positive_int, help="feature maps of generator and critic (default: 32; --full 128)")
    m.add_argument("--eval-samples", type=positive_int, help="samples scored per GAN (default: 5000; --full 50000)")
    m.add_argument("--scorer", metavar="RUN", help="a classifier run on the composites' RGB (default: train one)")
    _common(m)
    m.set_defaults(handler=_masks)
    c = study_verbs.add_parser("captions", help="the caption thesis's models on synthetic fashion scenes",
                               description="Fashion scenes (1-3 tinted Fashion-MNIST items on a 64x64 canvas, 5 "
                                           "template captions each), an AirNet image network trained on them, "
                                           "retrieval (rank) and generation (showtell) on its features, and a table "
                                           "against random ranking, greedy decoding and the nearest training "
                                           "image's caption (~11 minutes on a 2-core CPU).")
    c.add_argument("--out", default="runs/study_captions",
                   help="study folder, a new name if taken (default: runs/study_captions)")
    c.add_argument("--train", type=positive_int, help="training scenes (default: 6000)")
    c.add_argument("--epochs", type=positive_int, help="epochs of each caption model (default: rank 15, showtell 30)")
    _common(c)
    c.set_defaults(handler=_captions)


def _common(p) -> None:
    """The flags every study takes, last in its help."""
    p.add_argument("--data-root", help="Fashion-MNIST folder (default: Debian's)")
    p.add_argument("--seed", type=int, default=0, help="default: 0")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def _illustration(args) -> int:
    from lienzo.tasks.classify.study import StudySettings, format_table, illustration_study

    reinit = None if args.reinit is None else tuple(p.strip() for p in args.reinit.split(",") if p.strip())
    settings = StudySettings(args.labelled_per_class, args.source_epochs, args.finetune_epochs, reinit,
                             args.low_lr, args.high_lr, seed=args.seed, max_test=args.max_test)
    study = illustration_study(args.out, args.source, settings, data_root=args.data_root,
                               progress=not args.no_progress)
    print_study(format_table(study), study["dir"])
    return EXIT_OK


def _masks(args) -> int:
    from lienzo.tasks.generate.study import FULL_SETTINGS, MasksStudySettings, format_table, masks_study, with_overrides

    base = FULL_SETTINGS if args.full else MasksStudySettings()
    settings = with_overrides(base, steps=args.steps, maps=args.maps, eval_samples=args.eval_samples, seed=args.seed)
    study = masks_study(args.out, settings, scorer=args.scorer, fashion_root=args.data_root,
                        progress=not args.no_progress)
    print_study(format_table(study), study["dir"])
    return EXIT_OK


def _captions(args) -> int:
    from lienzo.tasks.caption.study import CaptionStudySettings, captions_study, format_table, with_overrides

    settings = with_overrides(CaptionStudySettings(), train=args.train, rank_epochs=args.epochs,
                              showtell_epochs=args.epochs, seed=args.seed)
    study = captions_study(args.out, settings, fashion_root=args.data_root, progress=not args.no_progress)
    print_study(format_table(study), study["dir"])
    return EXIT_OK
