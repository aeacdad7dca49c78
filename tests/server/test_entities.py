"""State machines for host entities over real HTTP: seed 004's ticket
machine with guards, a host-declared machine, 409 with the allowed next
states, and the timeline."""

from __future__ import annotations

import httpx
import orjson
import pytest

from support import Admin, ServerProcess, bearer, sse, unique

pytestmark = pytest.mark.asyncio


def move(client: httpx.Client, kind: str, entity: str, to: str, **extra: object) -> httpx.Response:
    return client.post(f"/api/entities/{kind}/{entity}/transition", json={"to": to, **extra})


async def test_the_ticket_machine_with_guards_events_and_timeline(
    server: ServerProcess, admin: Admin
) -> None:
    tenant = admin.tenant()
    landlord = admin.user(
        tenant, "landlord", "landlord", grant=["tickets.read", "tickets.triage", "tickets.approve"]
    )
    renter = admin.user(tenant, "renter", "renter", grant=["tickets.read"])
    as_landlord = httpx.Client(base_url=server.url, headers=bearer(landlord))
    as_renter = httpx.Client(base_url=server.url, headers=bearer(renter))
    ticket = unique("tkt_")
    async with sse(server.url, renter, params={"types": "ticket.*"}) as stream:
        refused = move(as_renter, "ticket", ticket, "TRIAGED")
        assert refused.status_code == 403  # the guard: tickets.triage
        answer = move(as_landlord, "ticket", ticket, "TRIAGED", reason="looked at it")
        assert answer.status_code == 200, answer.text
        (event,) = await stream.events(1)
        assert event["type"] == "ticket.status_changed"
        assert event["data"]["ticketId"] == ticket
        assert event["data"]["previousStatus"] == "OPEN" and event["data"]["newStatus"] == "TRIAGED"
    wrong = move(as_landlord, "ticket", ticket, "COMPLETED")
    assert wrong.status_code == 409 and wrong.json()["allowed"] == ["CANCELLED", "QUOTED"]
    assert move(as_renter, "ticket", ticket, "CANCELLED").status_code == 200  # no guard on cancel
    assert move(as_landlord, "ticket", ticket, "TRIAGED").json()["allowed"] == []  # terminal
    timeline = as_renter.get(f"/api/entities/ticket/{ticket}/timeline").json()
    assert [orjson.loads(t["details"])["to"] for t in timeline] == ["TRIAGED", "CANCELLED"]
    assert timeline[0]["ticketId"] == ticket and timeline[0]["actorId"] == "landlord"
    assert timeline[0]["eventType"] == "status_changed" and timeline[0]["id"].startswith("tl_")


async def test_host_declared_machines(server: ServerProcess, admin: Admin) -> None:
    tenant = admin.tenant()
    spec = {
        "states": ["CLOSED", "OPEN", "LOCKED"],
        "initial": "CLOSED",
        "transitions": {"CLOSED": ["OPEN", "LOCKED"], "OPEN": ["CLOSED"], "LOCKED": ["CLOSED"]},
        "guards": {"LOCKED->CLOSED": "doors.unlock"},
        "events": {"OPEN": "qms.document.updated"},
        "idField": "doorId",
    }
    kind = unique("door")
    assert admin.http.put(f"/api/admin/state-machines/{kind}", json=spec).status_code == 200
    bad = admin.http.put(f"/api/admin/state-machines/{kind}", json={**spec, "initial": "AJAR"})
    assert bad.status_code == 422
    key = admin.api_key(["publish"], tenant_id=tenant)
    service = httpx.Client(base_url=server.url, headers=bearer(key))
    opened = move(service, kind, "front", "OPEN").json()
    assert opened["event"]["position"] > 0
    stored = admin.http.get("/api/events/log", params={"tenantId": tenant}).json()["items"][0]
    assert stored["data"]["doorId"] == "front" and stored["data"]["newState"] == "OPEN"
    assert move(service, kind, "front", "CLOSED").json()["event"] is None  # no event declared
    assert move(service, kind, "front", "LOCKED").status_code == 200
    assert move(service, kind, "front", "CLOSED").status_code == 200  # trusted keys skip guards
    assert move(service, unique("nomachine"), "x", "OPEN").status_code == 404
    other = admin.tenant()
    assert move(service, kind, "front", "OPEN", tenantId=other).status_code == 403
