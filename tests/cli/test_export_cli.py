"""``tidings export`` against a real server: the file holds the filtered
log, oldest first; ``--after`` resumes; stdout works; bad input and a
refused credential are one line on stderr."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from support import ADMIN_KEY, Admin, ServerProcess, running_server


def tidings(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tidings", *args], capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(tmp_path_factory.mktemp("export-cli")) as server:
        yield server


@pytest.fixture(scope="module")
def logged(live: ServerProcess) -> tuple[str, list[int]]:
    admin = Admin(live.url)
    try:
        tenant = admin.tenant()
        events = [
            {"type": "qms.car.updated", "tenantId": tenant, "entityId": f"car-{n}"}
            for n in range(1_200)
        ]
        answer = admin.http.post("/api/events/batch", json={"events": events[:1000]})
        rest = admin.http.post("/api/events/batch", json={"events": events[1000:]})
        results = answer.json()["results"] + rest.json()["results"]
        return tenant, [r["position"] for r in results]
    finally:
        admin.close()


def lines(text: str) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in text.splitlines() if line]


def test_export_writes_the_file_and_resumes(
    live: ServerProcess, logged: tuple[str, list[int]], tmp_path: Path
) -> None:
    tenant, positions = logged
    out = tmp_path / "log.ndjson"
    base = ("export", "--url", live.url, "--token", ADMIN_KEY, "--tenant", tenant)
    done = tidings(*base, "--output", str(out))
    assert done.returncode == 0, done.stderr
    assert [e["position"] for e in lines(out.read_text())] == positions
    assert f"exported {len(positions)} events to {out}" in done.stderr
    assert done.stdout == ""  # the events went to the file; the bar and summary to stderr
    resumed = tidings(*base, "--after", str(positions[-3]))
    assert resumed.returncode == 0, resumed.stderr
    assert [e["position"] for e in lines(resumed.stdout)] == positions[-2:]
    narrowed = tidings(*base, "--entity-id-contains", "car-119", "--types", "qms.car.*")
    assert [e["entityId"] for e in lines(narrowed.stdout)] == ["car-119"] + [
        f"car-{n}" for n in range(1190, 1200)
    ]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--after", "twelve"), "--after must be a log position"),
        (("--since", "yesterday"), "since"),
        (("--token", "wrong"), "tidings: "),
        (("--output", "/nonexistent-dir/x.ndjson"), "cannot write /nonexistent-dir/x.ndjson"),
    ],
)
def test_bad_input_is_one_line(live: ServerProcess, args: tuple[str, ...], says: str) -> None:
    done = tidings("export", "--url", live.url, "--token", ADMIN_KEY, *args)
    assert done.returncode == 1
    assert done.stderr.startswith("tidings: ") and done.stderr.count("\n") == 1, done.stderr
    assert says in done.stderr


def test_an_unreachable_server_is_one_line() -> None:
    done = tidings("export", "--url", "http://127.0.0.1:1", "--token", ADMIN_KEY)
    assert done.returncode == 1
    assert done.stderr.startswith("tidings: cannot reach") and done.stderr.count("\n") == 1
