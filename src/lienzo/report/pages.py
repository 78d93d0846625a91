"""Every HTML page of lienzo from the jinja2 templates in `lienzo/report/templates/`, autoescaped: what the
pages show comes as data (`lienzo.report.content`), so no text reaches a page as markup.

    html = render("page.html", page=Page("Masks study", sections=[...]))
    write_page(folder / "study.html", page)

Templates: base.html (the head and stylesheet), macros.html (tables, inline content, sections),
run.html (a run's report.html) and page.html (studies, runs compared).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import jinja2

from lienzo.report.content import Image, Lines, Numbered, Page, Text
from lienzo.runs import atomic_write_text


@cache
def environment() -> jinja2.Environment:
    """The templates' environment: found in the installed package, escaping on, a missing name an error."""
    env = jinja2.Environment(loader=jinja2.PackageLoader("lienzo.report", "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    # the kinds of inline content, for the `inline` macro: {% if x is image %}
    env.tests.update(text=lambda x: isinstance(x, Text), image=lambda x: isinstance(x, Image),
                     lines=lambda x: isinstance(x, Lines), numbered=lambda x: isinstance(x, Numbered))
    return env


def render(template: str, **context) -> str:
    """One template rendered with `context` (every value escaped unless a template says otherwise)."""
    return environment().get_template(template).render(**context)


def render_page(page: Page) -> str:
    """A study's or a comparison's whole page."""
    return render("page.html", page=page, title=page.title)


def write_page(path: Path, page: Page) -> Path:
    """Render `page` and write it to `path` atomically; returns the path."""
    atomic_write_text(Path(path), render_page(page))
    return Path(path)
