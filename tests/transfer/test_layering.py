"""Imports flow downwards: building networks (models/) and transfer learning never reach up into training."""

import ast
from pathlib import Path

import pytest

import lienzo

SRC = Path(lienzo.__file__).parent


def lienzo_imports(path: Path) -> set[str]:
    """Every lienzo module a file imports, at the top or inside functions ("lienzo.x.y")."""
    package = ".".join(("lienzo", *path.relative_to(SRC).with_suffix("").parts[:-1]))
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(p for p in (base, node.module or "") if p)
            found |= {module} | {f"{module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return {m for m in found if m == "lienzo" or m.startswith("lienzo.")}


def _above(imports: set[str], allowed: tuple[str, ...]) -> list[str]:
    top = {".".join(m.split(".")[:2]) for m in imports}
    return sorted(m for m in top if m != "lienzo" and m not in allowed)


@pytest.mark.parametrize("path", sorted((SRC / "models").glob("*.py")), ids=lambda p: p.name)
def test_models_import_only_what_lies_below_them(path):
    allowed = ("lienzo.models", "lienzo.errors", "lienzo.data", "lienzo.config", "lienzo.runs", "lienzo.hardware")
    assert _above(lienzo_imports(path), allowed) == []


@pytest.mark.parametrize("path", sorted(p for p in (SRC / "transfer").glob("*.py") if p.name != "study.py"),
                         ids=lambda p: p.name)
def test_transfer_never_imports_training_or_evaluation(path):
    allowed = ("lienzo.transfer", "lienzo.models", "lienzo.errors", "lienzo.data", "lienzo.config", "lienzo.runs",
               "lienzo.hardware", "lienzo.models.summary", "lienzo.metrics", "lienzo.report", "lienzo.__version__")
    assert _above(lienzo_imports(path), allowed) == []


def test_the_walk_sees_imports_inside_functions():
    assert "lienzo.train" in lienzo_imports(SRC / "tasks" / "classify" / "study.py")  # the study runs training itself
