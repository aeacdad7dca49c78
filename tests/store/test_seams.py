"""The storage seam's shape: backend differences live in the backends'
modules as overridden hooks, never as flags in the shared code."""

from __future__ import annotations

import ast
from pathlib import Path

import tidings.store

STORE = Path(tidings.store.__file__).parent
BACKENDS = {STORE / "sql" / "sqlite.py", STORE / "sql" / "postgres.py"}
FLAGS = ("is_sqlite", "dialect")  # what shared code would ask to branch on the database
NAMEDTUPLE_API = {"_asdict", "_fields", "_mapping"}  # public, despite the underscore


def _shared_modules() -> list[Path]:
    return [p for p in STORE.rglob("*.py") if p not in BACKENDS and "migrations" not in p.parts]


def _branch_tests(tree: ast.AST) -> list[ast.expr]:
    return [n.test for n in ast.walk(tree) if isinstance(n, ast.If | ast.IfExp | ast.While)]


def test_shared_store_code_never_branches_on_the_backend() -> None:
    found = []
    for path in _shared_modules():
        for test in _branch_tests(ast.parse(path.read_text())):
            names = {n.attr for n in ast.walk(test) if isinstance(n, ast.Attribute)}
            names |= {n.id for n in ast.walk(test) if isinstance(n, ast.Name)}
            if any(flag in name for name in names for flag in FLAGS):
                found.append(f"{path.relative_to(STORE)}:{test.lineno}")
    assert found == []
    assert len(_shared_modules()) > 8  # the walk did see the store's modules


def test_the_job_queue_reaches_the_database_only_through_its_backend() -> None:
    """``SQLJobs`` is given a backend; it touches no private part of
    another object (it once called ``SQLStore._write``)."""
    tree = ast.parse((STORE / "jobs.py").read_text())
    private = [
        f"{ast.unparse(n)}:{n.lineno}"
        for n in ast.walk(tree)
        if isinstance(n, ast.Attribute)
        and n.attr.startswith("_")
        and not n.attr.startswith("__")
        and n.attr not in NAMEDTUPLE_API
        and not (isinstance(n.value, ast.Name) and n.value.id == "self")
    ]
    assert private == []
