"""The report pages' HTML: one stylesheet, tables and the page around them (no figures, no tasks)."""

from __future__ import annotations

import html

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;color:#222;padding:0 1rem}
h1{margin-bottom:.2rem} .sub{color:#666;margin-top:0}
table{border-collapse:collapse;margin:.5rem 0 1.5rem} th,td{border:1px solid #ddd;padding:.25rem .6rem;text-align:right}
th{background:#f4f4f4} td:first-child,th:first-child{text-align:left}
img{max-width:100%;border:1px solid #eee;margin:.3rem 0} pre{background:#f7f7f7;padding:.8rem;overflow:auto;font-size:.85rem}
.cards{display:flex;gap:1rem;flex-wrap:wrap} .card{border:1px solid #ddd;border-radius:6px;padding:.6rem 1rem;min-width:9rem}
.card b{font-size:1.5rem;display:block}
"""


def table(header: list[str], rows: list[list[str]]) -> str:
    """An HTML table; cells are inserted as given (escape text before)."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def page(title: str, body: list[str]) -> str:
    """A whole static page around the given HTML parts."""
    return "\n".join([
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>lienzo · {html.escape(title)}</title><style>{STYLE}</style></head><body>",
        *body, "</body></html>",
    ])
