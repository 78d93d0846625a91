"""Plots and the one static report page of a run."""

from .html import write_report

__all__ = ["write_report"]
