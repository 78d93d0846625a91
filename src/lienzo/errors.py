"""Errors a user can fix. The CLI prints them as one line and exits with code 2."""

from __future__ import annotations

import difflib


class LienzoError(Exception):
    """A mistake in the user's input: a bad path, file, key or value."""


class ConfigError(LienzoError):
    """An unknown key, a wrong type or an invalid value in a config."""


class DataError(LienzoError):
    """A data file that is missing, unreadable or not what it claims to be."""


class ModelError(LienzoError):
    """An unknown architecture or a checkpoint that does not fit the model."""


class RunError(LienzoError):
    """A run folder that cannot be written, resumed or read."""


def did_you_mean(name: str, choices) -> str:
    """A ' (did you mean ...?)' suffix naming the closest choices, or ''."""
    close = difflib.get_close_matches(name, list(choices), n=3, cutoff=0.5)
    return f" (did you mean {', '.join(close)}?)" if close else ""
