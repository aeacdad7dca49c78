"""Rows already in the log that the limits would refuse today (stored
before ``max_event_depth`` existed, or damaged): reading history, live
delivery through the feed, resume (Last-Event-ID) and rule replay never
fail on them. A row that nests too deep is served with the too-deep
member replaced by a truncation marker (redaction still applied to the
rest); a row no decoder can read is shown to nobody. Rows are written
straight into the database, on SQLite and PostgreSQL, while the server runs."""

from __future__ import annotations

import time

from support import Admin, ServerProcess, bearer, sse, unique
from tidings.core.envelope import Event
from tidings.store.base import NewEvent
from tidings.store.sql import SQLStore

TRUNCATED = {"_tidings": "truncated: nests deeper than 32 levels"}


def deep_text(levels: int) -> str:
    return '{"k":' * (levels - 1) + "{}" + "}" * (levels - 1)


def stored_row(tenant: str, *, data: str = '{"x": 1}', metadata: str = "{}") -> NewEvent:
    """A row as an old version would have stored it: the body text is
    written as given."""
    event = Event(
        id=unique("evt_"),
        tenant_id=tenant,
        type="qms.document.created",
        entity_type="document",
        entity_id="d1",
        action="CREATED",
        timestamp="2025-11-06T09:00:00.000Z",
        actor=None,
        metadata={},
        data={},
        audiences=("permission:qms.read",),
        schema="payload.QmsDocumentCreated.v1",
    )
    head = event.body_json()[: -len('"schema":"payload.QmsDocumentCreated.v1"}')]
    head = head.replace('"metadata":{},"data":{},', "")
    body = f'{head}"metadata":{metadata},"data":{data},"schema":"{event.schema}"}}'
    return NewEvent(event, None, time.time(), True, body)


async def write_rows(database_url: str, rows: list[NewEvent]) -> list[int]:
    store = SQLStore(database_url)
    await store.open()
    try:
        outcome = await store.append_events(rows)
    finally:
        await store.close()
    return [r.position for r in outcome.results]


async def test_rows_stored_too_deep_never_break_reads_live_or_resume(
    server: ServerProcess, admin: Admin
) -> None:
    tenant = admin.tenant()
    admin.role("reader", ["qms.read"], tenant_id=tenant)  # no qms.pii.read
    token = admin.user(tenant, "reader", "reader")
    pii = '{"reporterEmail": "rana@example.com"}'
    async with sse(server.url, token) as live:
        positions = await write_rows(
            server.database_url,
            [
                stored_row(tenant, data=deep_text(300), metadata=pii),  # orjson cannot write it
                stored_row(tenant, data=deep_text(2_000)),  # no decoder reads it
                stored_row(tenant, metadata=deep_text(40)),  # past today's limit only
                stored_row(tenant, data="[not json"),  # damaged
            ],
        )
        first, _unreadable, third, _damaged = positions
        got = await live.events(2, timeout=10)  # the feed reads them from the log
        assert [e["position"] for e in got] == [first, third]
        assert got[0]["data"] == TRUNCATED and got[0]["metadata"] == {}  # still redacted
        assert got[1]["metadata"] == TRUNCATED and got[1]["data"] == {"x": 1}
        sent = admin.publish({"type": "qms.car.updated", "tenantId": tenant, "data": {"n": 1}})
        assert sent.status_code == 202, sent.text
        (after,) = await live.events(1)
        assert after["position"] == sent.json()["position"]

    for credential in (None, token):  # the operator and the user: both 200
        headers = bearer(token) if credential else {}
        page = admin.http.get("/api/events/log", params={"tenantId": tenant}, headers=headers)
        assert page.status_code == 200, page.text
        items = {e["position"]: e for e in page.json()["items"]}
        assert set(items) == {first, third, sent.json()["position"]}
        assert items[first]["data"] == TRUNCATED
        assert ("reporterEmail" in items[first]["metadata"]) is (credential is None)

    resumed_from = str(first - 1)
    async with sse(server.url, token, headers={"Last-Event-ID": resumed_from}) as resumed:
        replayed = await resumed.events(3, timeout=10)
        assert [e["position"] for e in replayed] == [first, third, sent.json()["position"]]

    window = {"from": "2000-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z", "tenantId": tenant}
    replay = admin.http.post("/api/admin/replay", json={**window, "dryRun": True})
    assert replay.status_code == 200, replay.text
    assert replay.json()["scanned"] == 5
