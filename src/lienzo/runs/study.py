"""A study's folder (`lienzo study ...`): how long each stage took, and study.json/.md/.html written atomically.
"""

from __future__ import annotations

import logging
from pathlib import Path

from lienzo.runs.files import atomic_write_text, write_json

log = logging.getLogger("lienzo")


class Laps:
    """Seconds each stage of a long job took, in order (`lap("scenes")` when a stage ends), and their total."""

    def __init__(self) -> None:
        import time

        self._now = time.perf_counter
        self._clock = self._now()
        self.seconds: dict[str, float] = {}

    def lap(self, stage: str) -> None:
        now = self._now()
        self.seconds[stage] = round(now - self._clock, 1)
        self._clock = now

    def total(self) -> float:
        self.seconds["total"] = round(sum(v for k, v in self.seconds.items() if k != "total"), 1)
        return self.seconds["total"]


def write_study(folder: Path, study: dict, markdown: str, page: str) -> dict:
    """A study's results into its folder, each file atomically: study.json, study.md (its tables) and
    study.html (the page); returns the study with its folder under "dir"."""
    write_json(folder / "study.json", study)
    atomic_write_text(folder / "study.md", markdown)
    atomic_write_text(folder / "study.html", page)
    log.info("study written to %s (%.1f minutes)", folder, study.get("seconds", {}).get("total", 0.0) / 60)
    return {**study, "dir": str(folder)}
