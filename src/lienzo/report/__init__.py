"""Plots and the one static report page of a run."""

from .html import refresh_report, write_report

__all__ = ["refresh_report", "write_report"]
