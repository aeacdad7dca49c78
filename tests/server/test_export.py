"""``GET /api/events/export``: the log as NDJSON with the filters, reader
and redaction of ``/api/events/log``, oldest first, resumable by position,
and in constant memory (a 100k-event log on both backends, the server's
RSS watched while it streams)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from support import ADMIN_KEY, Admin, ServerProcess, bearer, running_server, unique

TYPE = "qms.dashboard.updated"  # sensitive: metadata.reporterEmail needs qms.pii.read
BIG_LOG = 100_000
BATCH = 1_000
RSS_GROWTH_BOUND_KB = 40_000  # the whole result held in memory would be several times this


def event(tenant: str, n: int, **extra: Any) -> dict[str, Any]:
    return {
        "type": TYPE,
        "tenantId": tenant,
        "entityType": "dashboard",
        "entityId": f"dash-{n}",
        "data": {"dashboardId": f"dash-{n}", "updatedFields": ["total"]},
        **extra,
    }


def publish_batch(admin: Admin, events: list[dict[str, Any]]) -> list[int]:
    answer = admin.http.post("/api/events/batch", json={"events": events}, timeout=60)
    assert answer.status_code == 202, answer.text
    return [r["position"] for r in answer.json()["results"]]


def export_lines(
    url: str, params: dict[str, str], headers: dict[str, str] | None = None
) -> Iterator[dict[str, Any]]:
    auth = headers or {"Authorization": f"Bearer {ADMIN_KEY}"}
    with httpx.stream(
        "GET", f"{url}/api/events/export", params=params, headers=auth, timeout=60
    ) as answer:
        assert answer.status_code == 200, answer.read()
        assert answer.headers["content-type"] == "application/x-ndjson"
        for line in answer.iter_lines():
            if line:
                yield orjson.loads(line)


def test_export_streams_the_filtered_log_oldest_first_with_positions(
    server: ServerProcess, admin: Admin
) -> None:
    tenant = admin.tenant()
    positions = publish_batch(admin, [event(tenant, n) for n in range(5)])
    publish_batch(admin, [{**event(tenant, 9), "type": "qms.car.updated", "data": {}}])
    got = list(export_lines(server.url, {"tenantId": tenant, "types": "qms.dashboard.*"}))
    assert [e["position"] for e in got] == positions
    assert [e["entityId"] for e in got] == [f"dash-{n}" for n in range(5)]
    by_entity = list(export_lines(server.url, {"tenantId": tenant, "entityId": "dash-3"}))
    assert [e["position"] for e in by_entity] == [positions[3]]
    contains = list(export_lines(server.url, {"tenantId": tenant, "entityIdContains": "sh-4"}))
    assert [e["position"] for e in contains] == [positions[4]]
    resumed = list(export_lines(server.url, {"tenantId": tenant, "after": str(positions[1])}))
    assert [e["position"] for e in resumed][:3] == positions[2:]


def test_export_has_the_logs_reader_and_redaction(server: ServerProcess, admin: Admin) -> None:
    tenant, other = admin.tenant(), admin.tenant()
    admin.role("reader", ["qms.read"], tenant_id=tenant)  # no qms.pii.read
    token = admin.user(tenant, unique("u"), "reader")
    pii = {"reporterEmail": "rana@example.com"}
    (mine,) = publish_batch(
        admin, [event(tenant, 1, metadata=pii, audiences=["permission:qms.read"])]
    )
    publish_batch(admin, [event(other, 2, audiences=["permission:qms.read"])])
    as_user = list(export_lines(server.url, {}, bearer(token)))
    assert [e["position"] for e in as_user] == [mine]  # only its tenant
    assert "reporterEmail" not in as_user[0]["metadata"]
    as_operator = list(export_lines(server.url, {"tenantId": tenant}))
    assert as_operator[0]["metadata"] == pii
    bound_key = admin.api_key(["admin"], tenant_id=tenant)
    as_bound = list(export_lines(server.url, {}, bearer(bound_key)))
    assert {e["tenantId"] for e in as_bound} == {tenant}
    refused = httpx.get(
        f"{server.url}/api/events/export", params={"tenantId": other}, headers=bearer(bound_key)
    )
    assert refused.status_code == 403
    too_long = {"entityIdContains": "x" * 201}
    for params, field in (({"after": "x"}, "after"), (too_long, "entityIdContains")):
        bad = httpx.get(f"{server.url}/api/events/export", params=params, headers=bearer(token))
        assert bad.status_code == 422 and bad.json()["field"] == field


def rss_kb(server: ServerProcess) -> int:
    assert server.proc is not None
    status = Path(f"/proc/{server.proc.pid}/status").read_text()
    (line,) = [x for x in status.splitlines() if x.startswith("VmRSS:")]
    return int(line.split()[1])


@pytest.mark.slow
def test_a_100k_event_log_exports_in_flat_memory_and_resumes(
    database_url: str, tmp_path: Path
) -> None:
    with running_server(tmp_path, database_url=database_url) as server:
        admin = Admin(server.url)
        try:
            tenant = admin.tenant()
            first = publish_batch(admin, [event(tenant, n) for n in range(BATCH)])[0]
            for start in range(BATCH, BIG_LOG, BATCH):
                publish_batch(admin, [event(tenant, n) for n in range(start, start + BATCH)])
            warm = list(export_lines(server.url, {"tenantId": tenant, "types": "none.*"}))
            assert warm == []
            before = peak = rss_kb(server)
            started = time.monotonic()
            count, last = 0, first - 1
            for item in export_lines(server.url, {"tenantId": tenant}):
                assert item["position"] > last and item["entityId"] == f"dash-{count}"
                last = item["position"]
                count += 1
                if count % 5_000 == 0:
                    peak = max(peak, rss_kb(server))
            elapsed = time.monotonic() - started
            assert count == BIG_LOG
            grown = peak - before
            print(f"\nexport of {count} events: {elapsed:.1f} s, server RSS +{grown} kB")
            assert grown < RSS_GROWTH_BOUND_KB, f"the server grew by {grown} kB"
            middle = first + BIG_LOG // 2 - 1
            resumed = export_lines(server.url, {"tenantId": tenant, "after": str(middle)})
            head = [next(resumed)["position"] for _ in range(3)]
            resumed.close()
            assert head == [middle + 1, middle + 2, middle + 3]
        finally:
            admin.close()
