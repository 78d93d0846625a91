"""The process a verb runs in: how many CPU threads it may use, and one plain line per log message."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import warnings
from pathlib import Path

from lienzo.cli.options import find_override
from lienzo.errors import ConfigError

EXIT_OK = 0
EXIT_USER_ERROR = 2  # a user mistake: one line, --debug for the traceback
EXIT_PARTIAL = 3  # some inputs failed and the rest were done
EXIT_INTERRUPTED = 130  # Ctrl-C


# ---- threads --------------------------------------------------------------------------------------------

def _config_file(args: argparse.Namespace) -> Path | None:
    """The config a verb works from: a run folder's config.yaml, or features' --config."""
    run = getattr(args, "run", None)
    if run is not None:
        path = Path(run) / "config.yaml"
        # Not a run folder (an SVM folder, or a missing one that the verb itself reports): no config.
        return path if path.is_file() else None
    config = getattr(args, "config", None)
    return Path(config) if config else None


def resolve_threads(args: argparse.Namespace) -> int | None:
    """CPU threads for a verb: --threads, else trainer.threads from the overrides, else from its config."""
    if not hasattr(args, "threads"):
        return None  # a verb without --threads (train applies trainer.threads itself)
    if args.threads is not None:
        return args.threads
    text = find_override(getattr(args, "overrides", None), "trainer.threads")
    path = _config_file(args)
    if text is None and path is None:
        return None
    from lienzo.tasks import config_from_dict, load_config

    overrides = [text] if text is not None else []
    cfg = load_config(path, overrides) if path is not None else config_from_dict({}, overrides)
    return cfg.trainer.threads


@contextlib.contextmanager
def cpu_threads(count: int | None):
    """At most `count` CPU threads in torch and in numpy/scikit-learn's BLAS and OpenMP pools for the verb,
    then back as before (main() may run many verbs in one process)."""
    if count is None:
        yield
        return
    if count < 1:
        raise ConfigError(f"trainer.threads: must be at least 1, got {count}")
    import torch
    from threadpoolctl import threadpool_limits  # scikit-learn's own dependency

    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        with threadpool_limits(limits=count):
            yield
    finally:
        torch.set_num_threads(before)


# ---- logging --------------------------------------------------------------------------------------------

# Lightning's package loggers (standalone and inside `lightning`); everything Lightning says goes through them.
LIGHTNING_LOGGERS = ("lightning.pytorch", "lightning.fabric", "pytorch_lightning", "lightning_fabric")


class _CurrentStderr(logging.StreamHandler):
    """Writes to sys.stderr as it is when a message comes (pytest's capture, a notebook's stream), not as it
    was when the handler was made: main() may run many times in one process."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self):
        return sys.stderr


def _not_a_tip(record: logging.LogRecord) -> bool:
    """False for Lightning's advertisements ("💡 Tip: ... try installing litlogger"), shown on every run."""
    return not record.getMessage().startswith("💡")


_LIGHTNING_HANDLER = _CurrentStderr()
_LIGHTNING_HANDLER.addFilter(_not_a_tip)


def quiet_frameworks(debug: bool) -> None:
    """One line per message on stderr: lienzo's and Lightning's once each, plain, without tips or noise."""
    logging.basicConfig(level=logging.DEBUG if debug else logging.INFO, format="%(message)s", stream=sys.stderr)
    # `import lightning` hangs its own "INFO: ..." handler on the "lightning" logger; Lightning's records reached
    # that one and, passed on, ours too: every line twice. Stopping them one level below gives them one handler.
    # (Lightning sets these loggers' levels at import, so a level set here would not last: its INFO lines show.)
    for name in LIGHTNING_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers = [_LIGHTNING_HANDLER]  # also replaces one Lightning made if imported before any root handler
        logger.propagate = False
    if not debug:
        warnings.filterwarnings("ignore", module=r"lightning.*")
        warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
        warnings.filterwarnings("ignore", message=r".*on_after_batch_transfer.*")
        warnings.formatwarning = lambda message, category, *args, **kw: f"warning: {message}\n"
