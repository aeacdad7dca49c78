"""The command line as users run it: exit codes and one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from pg import PostgresServer


def tidings(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tidings", *args], capture_output=True, text=True, timeout=60
    )


def test_migrate_is_safe_to_run_twice(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    for _ in range(2):
        done = tidings("migrate", "--database", url)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("schema at revision ")


def test_migrate_on_postgresql_from_several_processes_at_once(postgres: PostgresServer) -> None:
    url = postgres.url(postgres.create_database())
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "tidings", "migrate", "--database", url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    for run in runs:
        _out, err = run.communicate(timeout=60)
        assert run.returncode == 0, err
    assert postgres.psql("SELECT count(*) FROM events", database=url.rsplit("/", 1)[1]) == "0"


def test_errors_are_one_line(tmp_path: Path) -> None:
    bad = tidings("migrate", "--database", "postgresql://nobody@127.0.0.1:1/none")
    assert bad.returncode == 1
    assert bad.stderr.startswith("tidings: ") and bad.stderr.count("\n") == 1
    config = tmp_path / "bad.toml"
    config.write_text("[tidings]\nno_such_setting = 1\n")
    wrong = tidings("migrate", "--config", str(config))
    assert (
        wrong.returncode == 2
        and "unknown setting" in wrong.stderr
        and wrong.stderr.count("\n") == 1
    )
