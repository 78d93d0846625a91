"""What a page shows, as data: sections of tables, text and figures that the templates render.

Nothing here is HTML: every string is text, escaped when the page is rendered, so a class name, a file
name or a caption holding `<`, `&` or `<script>` shows as itself. A task builds its run page's `Report`;
studies and the comparison build a `Page`.

    ReportSection("Per class (test)", table=Table(["class", "top-1"], [["Trouser", "97.10 %"]]))
    ReportSection("Confusion matrix (test)", ["confusion.png"])          # PNG names under the run's plots/
    ReportSection("Metrics", text=[["No IS/FID: set ", Text("gan.scorer", "code"), " to a classifier run."]])

A table cell or a paragraph is inline content: a string, a `Text` (bold, italics, code), an `Image`,
`Lines` (one under the other), `Numbered` (an ordered list), or a list of these shown one after the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

STYLES = ("b", "i", "code")  # the HTML elements a Text may be


@dataclass(frozen=True)
class Text:
    """Text shown bold (style "b"), in italics ("i") or as code ("code")."""

    text: str
    style: str = "b"

    def __post_init__(self):
        if self.style not in STYLES:
            raise ValueError(f"Text style {self.style!r}: one of {', '.join(STYLES)}")


@dataclass(frozen=True)
class Image:
    """An image: `src` relative to the page (or a data: URI, so a page stays one file)."""

    src: str
    alt: str = ""
    width: int | None = None  # pixels; None: its own width, at most the page's
    caption: str = ""  # shown under it; a section's captioned figures sit side by side
    pixelated: bool = False  # small sample grids scaled up without blurring


@dataclass
class Lines:
    """Parts shown one under the other (a run of captions)."""

    parts: list


@dataclass
class Numbered:
    """An ordered list (the top sentences retrieved for an image)."""

    entries: list


Inline = Union[str, Text, Image, Lines, Numbered, list]


@dataclass
class Table:
    """A table: column names (none: a table without a header row) and rows of inline content."""

    header: list[str]
    rows: list[list[Inline]]


@dataclass
class ReportSection:
    """One part of a page: a title and any of a table, paragraphs, preformatted text and figures, shown in
    that order. On a run's page, a figure given as a string is a PNG name under the run's plots/."""

    title: str
    figures: list[str | Image] = field(default_factory=list)
    table: Table | None = None
    text: list[Inline] = field(default_factory=list)  # paragraphs
    pre: str = ""  # preformatted text (a config, a markdown table)


@dataclass
class Report:
    """What a task puts on its run's page: a subtitle, headline cards (label, value), a headline section
    (shown above the training curves: the results table) and the other sections, in order, below them."""

    subtitle: str = ""
    cards: list[tuple[str, str]] = field(default_factory=list)
    headline: ReportSection | None = None
    sections: list[ReportSection] = field(default_factory=list)
    # legend labels of history columns in the training curves where the column's prefix would mislead
    # ({"val_fid": "samples against training images"}); others are labelled by prefix (train_ → training)
    curve_labels: dict[str, str] = field(default_factory=dict)


@dataclass
class Page:
    """A page other than a run's (a study, runs compared): a title, a subtitle and sections. A section
    without a title continues the one before it (no heading)."""

    title: str
    subtitle: str = ""
    sections: list[ReportSection] = field(default_factory=list)
