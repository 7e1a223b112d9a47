"""The package's shape: no import cycles (lazy imports count), and dependencies that point one way.

cli → serving | monitoring | rollout | ingest | jobs → predictions | registry | features | model |
data → spec, settings and the leaf modules (docs/architecture.md).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "services" / "loopline"
LEAVES = {
    "spec",
    "settings",
    "settings_loop",
    "settings_live",
    "errors",
    "times",
    "files",
    "console",
    "pushgateway",
    "retry",
}
LAYERS = [
    {"cli"},
    {"serving", "monitoring", "rollout", "ingest", "jobs", "replay"},
    {"predictions", "events", "outcomes", "registry", "features", "model", "data", "cluster"},
    LEAVES,
]
"""Top first: a module may import its own layer's other packages or lower ones, never higher."""


def module_name(path: Path) -> str:
    parts = ["loopline", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def imports(path: Path) -> Iterator[str]:
    """Every ``loopline`` module a file imports, wherever the import statement stands."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        else:
            continue
        for name in names:
            while name and name not in MODULES:
                name = name.rpartition(".")[0]
            if name:
                yield name


def graph() -> dict[str, set[str]]:
    edges = {}
    for module, path in MODULES.items():
        # Importing a package you are inside of (``loopline.x`` from ``loopline.x.y``) is not
        # an edge: Python has already run that package's ``__init__``.
        edges[module] = {t for t in imports(path) if t != module and not module.startswith(t + ".")}
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(edges.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def top_package(module: str) -> str:
    return module.split(".")[1] if "." in module else ""


def layer(module: str) -> int:
    return next(i for i, names in enumerate(LAYERS) if top_package(module) in names)


def test_the_cycle_finder_finds_a_cycle() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(edges) == [["a", "b", "c"]]


def test_no_import_cycles() -> None:
    assert cycles(graph()) == []


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m != "loopline"))
def test_every_package_has_a_layer(module: str) -> None:
    assert any(top_package(module) in names for names in LAYERS), module


def test_dependencies_point_down() -> None:
    upward = [
        f"{source} imports {target}"
        for source, targets in graph().items()
        if source != "loopline"
        for target in targets
        if target != "loopline" and layer(target) < layer(source)
    ]
    assert upward == []


def test_serving_uses_only_the_prediction_logs_public_api() -> None:
    internal = [
        f"{source} imports {target}"
        for source, targets in graph().items()
        if top_package(source) == "serving"
        for target in targets
        if target.startswith("loopline.predictions.")
    ]
    assert internal == []


@pytest.mark.parametrize(
    ("package", "allowed"),
    [
        ("model", {"model", "spec", "errors", "times", "files"}),
        ("features", {"features", "spec", "settings", "errors", "times", "files"}),
        ("predictions", {"predictions", "errors", "times", "files"}),
        ("spec", {"errors"}),
    ],
)
def test_lower_packages_import_only_what_they_may(package: str, allowed: set[str]) -> None:
    outside = [
        f"{source} imports {target}"
        for source, targets in graph().items()
        if top_package(source) == package
        for target in targets
        if top_package(target) not in allowed
    ]
    assert outside == []
