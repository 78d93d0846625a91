"""Imports flow one way: no cycle among lienzo's modules, counting imports inside functions too
(they hide a cycle from Python, not from the reader)."""

from __future__ import annotations

import ast
from pathlib import Path

import lienzo

PACKAGE = Path(lienzo.__file__).parent


def module_name(path: Path) -> str:
    parts = ["lienzo", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """lienzo module -> the lienzo modules it imports anywhere in its body."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                # `from pkg import mod` imports a module; `from mod import name` the module itself
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            graph[name] |= {t for t in targets if t in modules and t != name}
    # importing lienzo.a.b runs lienzo/a/__init__.py first: an edge too (but not to the importer's own
    # packages, which are loaded before it anyway)
    for name in graph:
        own = {".".join(name.split(".")[:i]) for i in range(1, len(name.split(".")) + 1)}
        for target in list(graph[name]):
            parts = target.split(".")
            graph[name] |= {".".join(parts[:i]) for i in range(2, len(parts))} - own
    # the task registry imports its built-in tasks by name (importlib): edges all the same
    graph["lienzo.tasks"] |= {spec.split(":")[0] for spec in builtin_tasks().values()}
    return graph


def builtin_tasks() -> dict[str, str]:
    """The `_BUILTIN` table of lienzo/tasks/__init__.py, read from its source."""
    tree = ast.parse((PACKAGE / "tasks" / "__init__.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "_BUILTIN" for t in targets):
                return ast.literal_eval(node.value)
    raise AssertionError("lienzo/tasks/__init__.py has no _BUILTIN table")


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_graph_sees_relative_and_function_level_imports():
    graph = import_graph()
    assert "lienzo.tasks" in graph["lienzo.train"]  # from .tasks import get_task
    assert "lienzo.report.plots" in graph["lienzo.report.html"]  # from . import plots
    assert "lienzo.tasks.classify" in graph["lienzo.tasks"]  # the registry's import by name
    assert "lienzo.report" in graph["lienzo.tasks.classify.plots"]  # the package of report.plots


def test_no_import_cycle():
    assert cycles(import_graph()) == []


# The layers, from the bottom: a module may import its own layer and those below, never one above.
# The first pattern a module matches decides its layer (verbs and studies live in their task's package
# but sit above the spine, which they call; so does `lienzo tsne`, which redraws a run's page through it).
LAYERS = [
    ("verbs and studies", ("lienzo.tasks.*.predict", "lienzo.tasks.*.sample", "lienzo.tasks.*.use",
                           "lienzo.tasks.*.study", "lienzo.transfer.tsne", "lienzo.curate", "lienzo.curate.*", "lienzo.bench",
                           "lienzo.serve", "lienzo.serve.*")),
    ("cli", ("lienzo.cli", "lienzo.cli.*", "lienzo.__main__")),
    ("spine", ("lienzo.train", "lienzo.evaluate")),
    ("tasks", ("lienzo.tasks", "lienzo.tasks.*")),
    ("transfer", ("lienzo.transfer", "lienzo.transfer.*")),
    ("building blocks", ("lienzo.data", "lienzo.data.*", "lienzo.models", "lienzo.models.*", "lienzo.metrics",
                         "lienzo.metrics.*", "lienzo.report", "lienzo.report.*", "lienzo.runs", "lienzo.runs.*",
                         "lienzo.distributed", "lienzo.legacy")),
    ("base", ("lienzo", "lienzo.errors", "lienzo.config", "lienzo.hardware", "lienzo.optimizers")),
]
ORDER = ["base", "building blocks", "transfer", "tasks", "spine", "verbs and studies", "cli"]  # bottom to top


def layer_of(module: str) -> str:
    from fnmatch import fnmatchcase

    for name, patterns in LAYERS:
        if any(fnmatchcase(module, p) for p in patterns):
            return name
    raise AssertionError(f"{module} belongs to no layer: add it to LAYERS")


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """'a (layer) -> b (layer)' for every import that points to a higher layer."""
    found = []
    for module, targets in sorted(graph.items()):
        for target in sorted(targets):
            if ORDER.index(layer_of(target)) > ORDER.index(layer_of(module)):
                found.append(f"{module} ({layer_of(module)}) -> {target} ({layer_of(target)})")
    return found


def test_every_module_has_a_layer():
    for module in import_graph():
        layer_of(module)


def test_the_layer_check_finds_an_upward_import():
    graph = {"lienzo.report.page": {"lienzo.tasks"}, "lienzo.tasks.classify.module": {"lienzo.report.page"},
             "lienzo.tasks.classify.predict": {"lienzo.evaluate"}, "lienzo.evaluate": {"lienzo.tasks.generate.sample"}}
    assert upward_imports(graph) == [
        "lienzo.evaluate (spine) -> lienzo.tasks.generate.sample (verbs and studies)",
        "lienzo.report.page (building blocks) -> lienzo.tasks (tasks)",
    ]


def test_imports_flow_down_the_layers():
    assert upward_imports(import_graph()) == []
