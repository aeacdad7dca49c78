"""The repository tests itself: nothing in it reads a folder beside the
checkout (the seed documents are vendored in tests/data/seeds).
``scripts/check-lowest`` also runs tests from a copy in an empty folder."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# Written in two parts so that this file does not match itself.
OUTSIDE = ("../" + "shared", "shared/" + "seeds", "/work/" + "shared")
CHECKED = ("src", "tests", "scripts", ".ci")


def _sources() -> list[Path]:
    files = [REPO / "pyproject.toml"]
    for folder in CHECKED:
        for path in sorted((REPO / folder).rglob("*")):
            if path.is_file() and "data" not in path.relative_to(REPO).parts[:2]:
                files.append(path)
    return [path for path in files if "__pycache__" not in path.parts]


def test_the_checks_cover_the_code() -> None:
    names = {path.name for path in _sources()}
    assert {"seed_catalog.py", "config.py", "check", "run"} <= names


@pytest.mark.parametrize("reference", OUTSIDE)
def test_nothing_reads_beside_the_checkout(reference: str) -> None:
    readers = [
        str(path.relative_to(REPO))
        for path in _sources()
        if reference in path.read_text(errors="replace")
    ]
    assert readers == []
