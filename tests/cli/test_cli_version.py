"""``tidings --version``, shell completion and ``--format`` choices, run as
the installed program (the console script of this environment)."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

PROGRAM = Path(sys.executable).parent / "tidings"  # pyproject.toml's [project.scripts]


def tidings(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(PROGRAM), *args], capture_output=True, text=True, timeout=60)


def test_version_is_the_package_version() -> None:
    done = tidings("--version")
    assert (done.returncode, done.stdout) == (0, f"tidings {version('tidings')}\n")


def test_shell_completion_is_on() -> None:
    assert "--install-completion" in tidings("--help").stdout
    # Typer finds the shell among the program's parents (shellingham): start
    # it from bash ("; exit $?" keeps bash from replacing itself with it).
    shown = subprocess.run(
        ["bash", "-c", f"{PROGRAM} --show-completion; exit $?"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    assert "_TIDINGS_COMPLETE=complete_bash" in shown.stdout
    # the script it prints completes our sub-commands
    completed = subprocess.run(
        [str(PROGRAM)],
        env={"_TIDINGS_COMPLETE": "complete_bash", "COMP_WORDS": "tidings rul", "COMP_CWORD": "1"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.stdout.split() == ["rules"]


@pytest.mark.parametrize(
    ("args", "choices"),
    [
        (["catalog", "export", "--format", "yaml"], "'asyncapi', 'jsonschema'"),
        (["rules", "list", "--format", "yaml"], "'table', 'json'"),
        (["jobs", "list", "--format", "yaml"], "'table', 'json'"),
    ],
)
def test_a_bad_format_choice_is_one_error_line(args: list[str], choices: str) -> None:
    done = tidings(*args)
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and choices in errors[0], done.stderr
    assert "╭" not in done.stderr  # no box: the plain line a script can read
