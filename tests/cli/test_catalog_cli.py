"""``tidings catalog list|show|validate|export|diff``: answers, exit codes
and one-line errors. ``validate`` on the shipped packs is the CI check."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from support import free_port
from tidings.cli.main import app

runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["catalog", *args])
    return result.exit_code, result.stdout, result.stderr


def test_validate_the_shipped_packs_as_ci_does() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tidings", "catalog", "validate"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert (
        done.stdout.startswith("ok: ") and "in 6 packs" in done.stdout
    )  # 5 seed packs + tidings-automation
    assert "share the schema name payload.TicketCreated" in done.stderr


def test_validate_a_broken_pack_is_one_line_with_file_and_line(tmp_path: Path) -> None:
    pack = tmp_path / "acme.yaml"
    pack.write_text(
        "pack: acme\nnaming: dotted\ntypes:\n  acme.thing.made:\n"
        "    audiences: [permission:acme.read]\n    versions:\n    - fields: 'a, a'\n",
        encoding="utf-8",
    )
    code, _out, err = run("validate", str(pack))
    assert code == 1
    assert err.count("\n") == 1 and err.startswith(f"tidings: {pack}:7: ")
    assert "listed twice" in err
    code, _, _ = run("validate", "--only", str(tmp_path / "missing.yaml"))
    assert code == 1


def test_list_and_show() -> None:
    code, out, _ = run("list", "--category", "Billing")
    assert code == 0 and "INVOICE_OVERDUE" in out and "qms." not in out
    code, out, _ = run("list", "--module", "lms", "--json")
    rows = [json.loads(line) for line in out.splitlines()]
    assert rows and {r["module"] for r in rows} == {"lms"}
    code, out, _ = run("list", "-q", "suspended")
    assert "ON_TENANT_SUSPENDED" in out
    code, out, _ = run("show", "ON_TENANT_SUSPENDED")
    assert code == 0 and "description[ar]" in out and "payload.OnTenantSuspended.v1" in out
    code, out, _ = run("show", "qms.car.updated", "--json")
    assert [v["version"] for v in json.loads(out)["versions"]] == [1, 2]
    code, _, err = run("show", "NOPE")
    assert code == 1 and err == "tidings: unknown event type 'NOPE'\n"


def test_diff_versions_of_a_type() -> None:
    code, out, _ = run("diff", "qms.car.updated")
    assert code == 0 and "backward compatible" in out and "escalationLevel" in out
    code, _, err = run("diff", "qms.car.updated", "--from", "5")
    assert code == 1 and "no version 5" in err


def _pack(path: Path, fields: str) -> Path:
    path.write_text(
        "pack: p\nnaming: screaming_snake\ntypes:\n  ACME_THING_MADE:\n"
        f"    audiences: [permission:acme.read]\n    versions:\n    - fields: '{fields}'\n",
        encoding="utf-8",
    )
    return path


def test_diff_two_pack_sets(tmp_path: Path) -> None:
    (tmp_path / "old").mkdir()
    (tmp_path / "new").mkdir()
    old = _pack(tmp_path / "old" / "p.yaml", "tenantId, thingId, note?")
    compatible = _pack(tmp_path / "new" / "p.yaml", "tenantId, thingId, note?, extra?")
    code, out, _ = run("diff", "--old", str(old), "--new", str(compatible))
    assert code == 0 and out.strip().endswith("compatible")
    breaking = _pack(tmp_path / "new" / "p.yaml", "tenantId, thingId, note, extra")
    code, out, _ = run("diff", "--old", str(tmp_path / "old"), "--new", str(breaking), "--json")
    report = json.loads(out)
    assert code == 1 and report["compatible"] is False
    kinds = {c["kind"] for c in report["types"][0]["changes"]}
    assert kinds == {"became_required", "field_added"}
    code, _, err = run("diff", "--old", str(old))
    assert code == 2 and "both --old and --new" in err


def test_a_broken_pack_stops_the_server_at_start_up(tmp_path: Path) -> None:
    pack = _pack(tmp_path / "broken.yaml", "tenantId, thingId(")
    env = {
        **os.environ,
        "TIDINGS_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}",
        "TIDINGS_PORT": str(free_port()),
        "TIDINGS_CATALOG_DIRS": str(pack),
    }
    done = subprocess.run(
        [sys.executable, "-m", "tidings", "serve"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 1
    assert done.stderr.startswith(f"tidings: {pack}:7: type 'ACME_THING_MADE'"), done.stderr
    assert done.stderr.count("\n") == 1
