"""``tidings rules|jobs|replay|export`` at a distance: against a real server
over HTTP (``--url`` and ``--key``) and against its database, each command
gives the same answer both ways; errors are one line."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from support import ADMIN_KEY, Admin, ServerProcess, free_port, unique
from tidings.cli.main import app

RUNNER = CliRunner()


def cli(*args: str) -> Any:
    """The ``tidings`` program in this process (a real node or a real HTTP
    client underneath; no server code is called directly)."""
    return RUNNER.invoke(app, list(args), catch_exceptions=False)


class Both:
    """The same command on the server (``--url``) and on its database."""

    def __init__(self, server: ServerProcess) -> None:
        self.url = server.url
        self.remote = ["--url", server.url, "--key", ADMIN_KEY]
        self.local = ["--database", server.database_url]

    def run(self, *args: str) -> tuple[Any, Any]:
        over_http, on_database = cli(*args, *self.remote), cli(*args, *self.local)
        assert over_http.exit_code == 0, over_http.output
        assert on_database.exit_code == 0, on_database.output
        return over_http, on_database

    def same(self, *args: str) -> str:
        over_http, on_database = self.run(*args)
        assert over_http.stdout == on_database.stdout
        return str(over_http.stdout)


@pytest.fixture
def both(server: ServerProcess) -> Both:
    return Both(server)


@pytest.fixture
def tenant(admin: Admin) -> str:
    return admin.tenant()


def follow_rule(tenant: str) -> dict[str, Any]:
    return {
        "name": unique("follow"),
        "tenantId": tenant,
        "trigger": {"type": "qms.car.updated"},
        "action": {"type": "publish_event", "config": {"type": "qms.document.updated"}},
    }


def add_rule(both: Both, tmp_path: Path, rule: dict[str, Any]) -> str:
    file = tmp_path / f"{rule['name']}.yaml"
    file.write_text(yaml.safe_dump(rule))
    added = cli("rules", "add", str(file), *both.remote)
    assert added.exit_code == 0, added.output
    rule_id, name = added.stdout.split()
    assert rule_id.startswith("rul_") and name == rule["name"]
    return rule_id


def test_rules_over_http_and_on_the_database_agree(both: Both, tenant: str, tmp_path: Path) -> None:
    rule_id = add_rule(both, tmp_path, follow_rule(tenant))
    listed = json.loads(both.same("rules", "list", "--tenant", tenant, "--format", "json"))
    assert [r["id"] for r in listed] == [rule_id]
    assert listed[0]["author"] == "cli"
    table = both.same("rules", "list", "--tenant", tenant)
    assert rule_id in table and "qms.car.updated" in table
    shown = json.loads(both.same("rules", "show", rule_id))
    assert shown == listed[0]
    sample = tmp_path / "event.json"
    sample.write_text(json.dumps({"type": "qms.car.updated", "tenantId": tenant, "data": {}}))
    dry_run = json.loads(both.same("rules", "test", rule_id, str(sample)))
    assert dry_run["matched"] is True, dry_run

    gone = cli("rules", "delete", rule_id, *both.remote)
    assert (gone.exit_code, gone.stdout) == (0, f"deleted {rule_id}\n")
    for where, said in ((both.remote, f"{both.url} answered 404: "), (both.local, "")):
        missing = cli("rules", "show", rule_id, *where)
        assert missing.exit_code == 1
        assert missing.stderr == f"tidings: {said}no rule {rule_id!r}\n"


def test_a_shipped_pack_loads_the_same_rules_both_ways(
    both: Both, tenant: str, tmp_path: Path
) -> None:
    over_http, on_database = both.run("rules", "load-pack", "lms-awareness", "--tenant", tenant)
    assert over_http.stdout == on_database.stdout  # loaded again: replaced, not added
    assert len(over_http.stdout.splitlines()) == 3


def test_a_pack_file_loads_the_same_rules_both_ways(
    both: Both, tenant: str, tmp_path: Path
) -> None:
    """Over HTTP the file is read here and its pack sent to the server."""
    rules = [follow_rule(tenant) | {"tenantId": None} for _ in range(2)]
    file = tmp_path / "pack.yaml"
    file.write_text(yaml.safe_dump({"name": "mine", "description": "Ours", "rules": rules}))
    over_http, on_database = both.run("rules", "load-pack", str(file), "--tenant", tenant)
    assert over_http.stdout == on_database.stdout  # loaded again: replaced, not added
    assert [line.split()[1] for line in over_http.stdout.splitlines()] == [r["name"] for r in rules]
    listed = json.loads(both.same("rules", "list", "--tenant", tenant, "--format", "json"))
    assert {r["author"] for r in listed} == {"pack:mine"}

    # One bad rule: a one-line error naming it, and nothing installed either way.
    bad = [follow_rule(tenant), {"name": "broken", "trigger": {}, "action": {"type": "nope"}}]
    file.write_text(yaml.safe_dump({"name": "bad", "rules": bad}))
    for where in (both.remote, both.local):
        refused = cli("rules", "load-pack", str(file), "--tenant", tenant, *where)
        assert refused.exit_code == 1, refused.output
        assert refused.stderr.count("\n") == 1 and "/rules/1" in refused.stderr
    after = json.loads(both.same("rules", "list", "--tenant", tenant, "--format", "json"))
    assert after == listed


def wait_for_jobs(both: Both, tenant: str, count: int) -> list[dict[str, Any]]:
    """The tenant's jobs once ``count`` have succeeded with their attempt recorded."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        listed = cli("jobs", "list", "--tenant", tenant, "--format", "json", *both.remote)
        assert listed.exit_code == 0, listed.output
        jobs = json.loads(listed.stdout)
        done = [j for j in jobs if j["status"] == "succeeded" and j["attempts"]]
        if len(done) == count == len(jobs):
            return list(jobs)
        time.sleep(0.2)
    raise AssertionError(f"jobs of {tenant} did not finish: {listed.stdout}")


def test_jobs_and_replay_over_http_and_on_the_database_agree(
    both: Both, admin: Admin, tenant: str, tmp_path: Path
) -> None:
    rule_id = add_rule(both, tmp_path, follow_rule(tenant))
    start = time.time() - 1
    assert admin.publish({"type": "qms.car.updated", "tenantId": tenant}).status_code == 202
    [job] = wait_for_jobs(both, tenant, 1)
    assert job["ruleId"] == rule_id
    listed = json.loads(both.same("jobs", "list", "--tenant", tenant, "--format", "json"))
    assert listed == [job]
    table = both.same("jobs", "list", "--tenant", tenant, "--status", "succeeded,dead")
    assert str(job["id"]) in table and "qms.car.updated" in table

    window = ("--from", str(start), "--to", str(time.time() + 1), "--tenant", tenant)
    report = both.same("replay", *window, "--dry-run")
    expected = "2 events, 1 rule matches: would queue 0 jobs (already had jobs: 1 succeeded)"
    assert report == expected + "\n"  # the follow-up event is scanned, matches nothing

    for where in (both.remote, both.local):  # each retry queues the finished job again
        retried = cli("jobs", "retry", str(job["id"]), *where)
        assert (retried.exit_code, retried.stdout) == (0, "retried 1\n")
        wait_for_jobs(both, tenant, 1)
    # a succeeded job is not discardable: none is, either way
    assert both.same("jobs", "discard", str(job["id"]), "--reason", "test") == "discarded 0\n"


def test_export_over_http_and_from_the_database_is_the_same_bytes(
    both: Both, admin: Admin, tenant: str, tmp_path: Path
) -> None:
    for n in range(3):
        event = {"type": "qms.car.updated", "tenantId": tenant, "entityId": f"c{n}"}
        assert admin.publish(event).status_code == 202
    files = []
    for name, where in (("http", both.remote), ("db", both.local)):
        out = tmp_path / f"{name}.ndjson"
        done = cli("export", "--tenant", tenant, "--output", str(out), *where)
        assert done.exit_code == 0, done.output
        assert "exported 3 events" in done.stderr
        files.append(out.read_bytes())
    assert files[0] == files[1]
    assert [json.loads(line)["entityId"] for line in files[0].splitlines()] == ["c0", "c1", "c2"]


def test_errors_at_a_distance_are_one_line(both: Both, server: ServerProcess) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"
    cases = {
        "unreachable": (["rules", "list", "--url", nobody, "--key", ADMIN_KEY], 1, "cannot reach"),
        "bad key": (["jobs", "list", "--url", server.url, "--key", "wrong"], 1, ""),
        "both targets": (["rules", "list", *both.remote, *both.local], 2, "not both"),
        "export both": (["export", *both.remote, *both.local], 2, "not both"),
        "unknown status": (["jobs", "list", "--status", "nope", *both.remote], 1, "nope"),
    }
    for name, (args, code, text) in cases.items():
        result = cli(*args)
        assert result.exit_code == code, (name, result.output)
        assert result.stderr.count("\n") == 1, (name, result.stderr)
        assert result.stderr.startswith("tidings: ") and text in result.stderr, name
    refused = cli("jobs", "list", "--url", server.url, "--key", "wrong")
    assert refused.stderr.startswith(f"tidings: {server.url} answered 401: ")
