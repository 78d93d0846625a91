"""What several verbs' parsers share: argument types that say their bound, the --json/--threads/--out flags,
key=value overrides, and the flags that are another spelling of a config key."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from lienzo.errors import ConfigError

# Flags that are another spelling of a config key: giving both, with different values, is an error.
FLAG_KEYS = {
    "batch_size": ("--batch-size", "data.batch_size"),
    "precision": ("--precision", "trainer.precision"),
    "threads": ("--threads", "trainer.threads"),
}
PRECISIONS = ("auto", "32", "bf16", "16")


# ---- argument types -------------------------------------------------------------------------------------

def int_at_least(minimum: int):
    """An argparse type: an integer >= minimum, refused with a message that says the bound."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse


positive_int = int_at_least(1)
nonnegative_int = int_at_least(0)


def _float_in(low: float, high: float, *, high_open: bool, what: str):
    """An argparse type: a float in [low, high] or [low, high)."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not (low <= value < high if high_open else low <= value <= high):
            raise argparse.ArgumentTypeError(f"{what}, got {text}")
        return value

    parse.__name__ = what
    return parse


fraction = _float_in(0.0, 1.0, high_open=True, what="expected a fraction in [0, 1)")
probability = _float_in(0.0, 1.0, high_open=False, what="expected a probability in [0, 1]")


def positive_number(text: str) -> float:
    """An argparse type: a float > 0 (learning rates)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def image_shape(text: str) -> tuple[int, int, int]:
    """An argparse type: C,H,W (or CxHxW) of positive integers, e.g. 3,32,32."""
    try:
        values = tuple(int(v) for v in text.replace("x", ",").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected C,H,W such as 3,32,32, got {text!r}") from None
    if len(values) != 3 or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected C,H,W such as 3,32,32, got {text!r}")
    return values


# ---- flags ----------------------------------------------------------------------------------------------

def json_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print the results as one line of JSON")


def threads_flag(p: argparse.ArgumentParser, config_note: str = "") -> None:
    p.add_argument("--threads", type=positive_int, metavar="N",
                   help=f"CPU threads for torch, numpy and scikit-learn (same as trainer.threads{config_note}; "
                        "default: all cores)")


def overrides_arg(p: argparse.ArgumentParser, text: str) -> None:
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help=text)


def legacy_out_arg(p: argparse.ArgumentParser) -> None:
    # The output used to be a positional: still accepted, no longer shown.
    p.add_argument("legacy_out", nargs="?", help=argparse.SUPPRESS)


# ---- reading what was given -----------------------------------------------------------------------------

def find_override(overrides, key: str) -> str | None:
    """The last `key=value` among overrides that sets `key` (later ones win, as in the config), or None."""
    found = None
    for text in overrides or []:
        name, sep, _ = text.partition("=")
        if sep and name.strip() == key:
            found = text
    return found


def check_duplicate_settings(args: argparse.Namespace) -> None:
    """A flag and a key=value for the same config key must agree: neither silently overrides the other."""
    for dest, (flag, key) in FLAG_KEYS.items():
        value = getattr(args, dest, None)
        text = find_override(getattr(args, "overrides", None), key)
        if value is not None and text is not None and text.partition("=")[2].strip() != str(value):
            raise ConfigError(f"{flag} {value} and {text.strip()} set the same thing: give only one of them")


def beside(path: str | Path, suffix: str) -> Path:
    """PATH with `suffix` added to its name, in the same folder ('imgs/' -> 'imgs_split')."""
    p = Path(path)
    if p.name in ("", ".", ".."):
        p = p.resolve()
    return p.with_name(p.name + suffix)


def out_path(args: argparse.Namespace, default: Path) -> Path:
    """--out, or the old positional spelling, or the verb's stated default."""
    legacy = getattr(args, "legacy_out", None)
    if legacy is not None and args.out is not None:
        raise ConfigError(f"the output is given twice ({legacy} and --out {args.out}): give only --out")
    chosen = args.out or legacy
    return Path(chosen) if chosen is not None else default
