"""Import rules of ``src/tidings``, read with ``ast`` (no import, no server).

1. No import circle: the graph has an edge ``a -> b`` for every import of
   module ``b`` (or of a name from it) that ``a`` makes at **module level at
   run time**. Imports inside functions (deferred on purpose) and inside
   ``if TYPE_CHECKING:`` blocks (never executed) are not edges: they cannot
   make an import fail half-way. A cycle is printed as ``a -> b -> a``.
2. Services and automation get narrow ports, not the node: no module under
   ``tidings/services`` or ``tidings/automation`` imports ``tidings.node``,
   not even for type checking.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import tidings

SRC = Path(tidings.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, ast.Module]:
    return {_module_name(p): ast.parse(p.read_text(), str(p)) for p in sorted(SRC.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(module: str, tree: ast.Module, *, type_checking: bool) -> Iterator[str]:
    """Every module ``module`` imports at module level (with ``type_checking``,
    also those in ``if TYPE_CHECKING:`` blocks)."""
    package = module if tree_is_package(module) else module.rpartition(".")[0]
    pending: list[ast.stmt] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.If):
            if _is_type_checking(node) and not type_checking:
                pending.extend(node.orelse)
                continue
            pending.extend(node.body + node.orelse)
        elif isinstance(node, ast.Try):
            pending.extend(node.body + node.orelse + node.finalbody)
            for handler in node.handlers:
                pending.extend(handler.body)
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)  # submodules


_PACKAGES = {_module_name(p) for p in SRC.rglob("__init__.py")}


def tree_is_package(module: str) -> bool:
    return module in _PACKAGES


def import_graph(*, type_checking: bool = False) -> dict[str, set[str]]:
    modules = _modules()
    return {
        name: {dep for dep in _imports(name, tree, type_checking=type_checking) if dep in modules}
        - {name}
        for name, tree in modules.items()
    }


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path that ends where it starts, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                return [*path[path.index(dep) :], dep]
            if dep not in state and (found := visit(dep)) is not None:
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)) is not None:
            return found
    return None


def test_there_is_no_import_circle_in_src() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


def test_services_and_automation_do_not_import_the_node() -> None:
    graph = import_graph(type_checking=True)
    offenders = sorted(
        name
        for name, deps in graph.items()
        if name.startswith(("tidings.services", "tidings.automation")) and "tidings.node" in deps
    )
    assert offenders == []


def test_the_cycle_finder_finds_a_cycle_and_prints_it() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_graph_sees_module_level_imports_only() -> None:
    graph = import_graph()
    assert "tidings.node" in graph["tidings.http.events"]  # a runtime import is an edge
    # tidings.automation.packs imports the rule book for type checking only
    assert "tidings.automation.rulebook" not in graph["tidings.automation.packs"]
    assert (
        "tidings.automation.rulebook"
        in import_graph(type_checking=True)["tidings.automation.packs"]
    )
