"""One source, two forms: ``tidings.js`` (the classic script) is exactly what
``scripts/build_tidings_js.py`` makes from ``tidings.mjs`` (the ES module),
and the generator refuses module syntax it cannot translate faithfully."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]
GENERATOR = REPO / "scripts" / "build_tidings_js.py"


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_tidings_js", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_classic_script_is_what_the_generator_makes() -> None:
    build = generator()
    made = build.classic_script(build.MODULE.read_text(encoding="utf-8"))
    assert build.SCRIPT.read_text(encoding="utf-8") == made, "run scripts/build_tidings_js.py"
    assert made == build.classic_script(build.MODULE.read_text(encoding="utf-8"))  # deterministic
    assert (
        "root.Tidings = Object.freeze({ DEFAULT_QUERY_KEYS, keysFor, connect, useTidings });"
        in made
    )
    assert "\nexport " not in made and "\nimport " not in made


def test_the_check_mode_passes_on_the_committed_files() -> None:
    fresh = subprocess.run(
        [sys.executable, str(GENERATOR), "--check"], capture_output=True, text=True, timeout=60
    )
    assert fresh.returncode == 0, fresh.stderr


@pytest.mark.parametrize(
    "source",
    [
        'import { x } from "./x.mjs";\nexport const a = 1;\n',
        "export default function connect() {}\n",
        "const a = 1;\nexport { a };\n",
        "const a = 1;\n",
    ],
)
def test_untranslatable_module_syntax_is_refused(source: str) -> None:
    build = generator()
    with pytest.raises(build.ModuleSyntaxError):
        build.classic_script(source)


def test_exports_become_members_of_the_global() -> None:
    made = generator().classic_script(
        "export const A = 1;\nexport function b() {\n  return A;\n}\n"
    )
    assert "\nconst A = 1;\nfunction b() {" in made
    assert made.endswith("root.Tidings = Object.freeze({ A, b });\n})(globalThis);\n")
