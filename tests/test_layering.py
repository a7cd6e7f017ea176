"""evalhub's layers, read from its source: the module-level imports form no cycle, the typed contracts (the
bottom layer) import no stage package, and the app reads the store only through its public functions."""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "evalhub"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _top_level_imports(path: Path) -> set[str]:
    """Modules imported when `path` is imported: module-level statements only (not inside functions, where
    evalhub imports heavy or upward dependencies lazily), and not under `if TYPE_CHECKING:`."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    found: set[str] = set()

    def visit(nodes) -> None:
        for node in nodes:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            if isinstance(node, (ast.If, ast.Try)):
                visit(node.body)
                visit(getattr(node, "orelse", []))
                for handler in getattr(node, "handlers", []):
                    visit(handler.body)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                found.add(base)
                found.update(f"{base}.{alias.name}" for alias in node.names)

    visit(tree.body)
    return found


@pytest.fixture(scope="module")
def graph() -> nx.DiGraph:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    g = nx.DiGraph()
    g.add_nodes_from(modules)
    for name, path in modules.items():
        for target in _top_level_imports(path):
            if target in modules and target != name:
                g.add_edge(name, target)
    return g


def test_the_import_graph_has_no_cycle(graph):
    assert graph.has_edge("evalhub.gate", "evalhub.contracts")  # the graph is read: a known edge is in it
    assert graph.has_edge("evalhub.stages", "evalhub.stages.judgments")
    cycles = [sorted(c) for c in nx.strongly_connected_components(graph) if len(c) > 1]
    assert cycles == []


def test_the_contracts_import_no_stage_package(graph):
    reached = nx.descendants(graph, "evalhub.contracts")
    stages = ("evalhub.generate", "evalhub.judge", "evalhub.forgetting", "evalhub.perplexity", "evalhub.stages",
              "evalhub.store", "evalhub.compare")
    assert sorted(m for m in reached if m.startswith(stages)) == []


def test_the_app_reads_the_store_through_its_public_functions():
    private = [f"{path.relative_to(ROOT)}: {target}" for path in [*(PACKAGE / "app").rglob("*.py"), ROOT / "app.py"]
               for target in _all_imports(path) if target.startswith("evalhub.store._")]
    assert private == []


def _all_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module} | {
        alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
