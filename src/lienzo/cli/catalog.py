"""The registered models as data, so that `lienzo models` answers without importing torch.

`model_catalog.json` holds what `lienzo.models.summary.models_table()` computes from the live registries
(names by kind, parameter counts, descriptions); a test keeps the two equal, and

    python -m lienzo.cli.catalog        # rewrites it after a model was added or changed
"""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path

from lienzo.errors import ConfigError

CATALOG = Path(__file__).with_name("model_catalog.json")


COLUMN_TITLES = {"params_32px_10": "params 3x32x32/10", "params_224px_1000": "params 3x224x224/1000",
                 "params_32px_3ch": "params G+D 3x32x32", "params_64px_4ch": "params G+D 4x64x64", "params": "params"}


def read_catalog(pattern: str = "*", kind: str | None = None) -> list[dict] | None:
    """The catalog's rows matching a name pattern and kind, or None when there is no catalog."""
    if not CATALOG.is_file():
        return None
    rows = json.loads(CATALOG.read_text())
    return [r for r in rows if fnmatch.fnmatch(r["name"], pattern) and (kind is None or r["kind"] == kind)]


def catalog_kinds() -> list[str]:
    return list(dict.fromkeys(r["kind"] for r in read_catalog() or []))


def model_rows(pattern: str = "*", kind: str | None = None) -> list[dict]:
    """The models matching a name pattern and kind, from the catalog (no torch import), or from the live
    registries when there is no catalog; an unknown kind is an error that lists the known ones."""
    rows = read_catalog(pattern, kind)
    if rows is not None and kind is not None and kind not in catalog_kinds():
        raise ConfigError(f"unknown kind of model '{kind}'; known: {', '.join(catalog_kinds())}")
    if rows is None:
        from lienzo.models.summary import models_table

        rows = models_table(pattern, kind)
    return rows


def write_catalog() -> Path:
    from lienzo.runs import atomic_write_text
    from lienzo.models.summary import models_table

    atomic_write_text(CATALOG, json.dumps(models_table(), indent=1, ensure_ascii=False) + "\n")
    return CATALOG


def format_models_table(rows: list[dict]) -> str:
    """The model table as text, one block per kind: name, parameter counts, the builder's description."""
    blocks = []
    for kind in dict.fromkeys(row["kind"] for row in rows):
        group = [row for row in rows if row["kind"] == kind]
        columns = [key for key in group[0] if key.startswith("params")]
        lines = [f"{kind}s:", f"{'name':<14}" + "".join(f"{COLUMN_TITLES[c]:>24}" for c in columns) + "  description"]
        for row in group:
            lines.append(f"{row['name']:<14}" + "".join(f"{row[c]:>24,}" for c in columns) + f"  {row['description']}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


if __name__ == "__main__":
    print(write_catalog())
