"""Who reads an entity's timeline (issue 12, defect 7), over real HTTP on
SQLite and PostgreSQL: a user sees the rows whose event it may see and no
others; the tenant lifecycle (reasons, key ids) is for admin credentials
of the tenant only."""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from support import Admin, ServerProcess, bearer, unique


def timeline(client: httpx.Client, kind: str, entity: str, **params: str) -> httpx.Response:
    return client.get(f"/api/entities/{kind}/{entity}/timeline", params=params)


def move(admin: Admin, tenant: str, kind: str, entity: str, to: str, **data: str) -> None:
    body = {"to": to, "tenantId": tenant, "reason": f"to {to}", "data": data}
    response = admin.http.post(f"/api/entities/{kind}/{entity}/transition", json=body)
    assert response.status_code == 200, response.text


def as_user(
    server: ServerProcess, admin: Admin, tenant: str, user: str, role: str = "member", **kw: Any
) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers=bearer(admin.user(tenant, user, role, **kw)))


def test_users_read_the_timeline_rows_whose_events_they_may_see(
    server: ServerProcess, admin: Admin
) -> None:
    tenant = admin.tenant()
    ticket = unique("tk")
    move(admin, tenant, "ticket", ticket, "TRIAGED", renterId="renter")
    move(admin, tenant, "ticket", ticket, "CANCELLED")  # no renterId: not the renter's event
    reader = as_user(server, admin, tenant, "reader", grant=["tickets.read"])
    renter = as_user(server, admin, tenant, "renter")
    stranger = as_user(server, admin, tenant, "stranger")

    def states(client: httpx.Client) -> list[str]:
        response = timeline(client, "ticket", ticket)
        assert response.status_code == 200, response.text
        return [orjson.loads(row["details"])["to"] for row in response.json()]

    assert states(reader) == ["TRIAGED", "CANCELLED"]
    assert states(renter) == ["TRIAGED"]
    assert states(stranger) == []
    full = timeline(admin.http, "ticket", ticket, tenantId=tenant).json()
    assert [orjson.loads(r["details"])["to"] for r in full] == ["TRIAGED", "CANCELLED"]
    for client in (reader, renter, stranger):
        client.close()


def test_rows_without_an_event_are_for_admins_only(server: ServerProcess, admin: Admin) -> None:
    tenant, kind = admin.tenant(), unique("door")
    spec = {
        "states": ["CLOSED", "OPEN"],
        "initial": "CLOSED",
        "transitions": {"CLOSED": ["OPEN"], "OPEN": ["CLOSED"]},
        "events": {"OPEN": "qms.document.updated"},
    }
    assert admin.http.put(f"/api/admin/state-machines/{kind}", json=spec).status_code == 200
    move(admin, tenant, kind, "front", "OPEN")
    move(admin, tenant, kind, "front", "CLOSED")  # emits nothing
    everyone = as_user(server, admin, tenant, "u1", grant=["qms.read"])
    rows = timeline(everyone, kind, "front").json()
    assert [orjson.loads(r["details"])["to"] for r in rows] == ["OPEN"]
    full = timeline(admin.http, kind, "front", tenantId=tenant).json()
    assert [orjson.loads(r["details"])["to"] for r in full] == ["OPEN", "CLOSED"]
    everyone.close()


def test_the_tenant_lifecycle_is_for_its_admins_only(server: ServerProcess, admin: Admin) -> None:
    tenant, other = admin.tenant(), admin.tenant()
    moved = admin.http.post(
        f"/api/admin/tenants/{tenant}/transition", json={"to": "ACTIVE", "reason": "why"}
    )
    assert moved.status_code == 200, moved.text
    users = [
        as_user(server, admin, tenant, "member"),
        as_user(server, admin, tenant, "boss", "admin", grant=["tenant.read", "qms.read"]),
        as_user(server, admin, tenant, "ops", platform=True, platform_tenants=["*"]),
    ]
    for client in users:
        for params in ({}, {"tenantId": tenant}):
            refused = timeline(client, "tenant", tenant, **params)
            assert refused.status_code == 403, refused.text
            assert "why" not in refused.text
        client.close()
    scoped = httpx.Client(base_url=server.url, headers=bearer(admin.api_key(["admin"], tenant)))
    rows = timeline(scoped, "tenant", tenant).json()
    assert [orjson.loads(r["details"])["reason"] for r in rows][-1] == "why"
    assert timeline(scoped, "tenant", other, tenantId=other).status_code == 403
    publisher = httpx.Client(
        base_url=server.url, headers=bearer(admin.api_key(["publish"], tenant))
    )
    assert timeline(publisher, "tenant", tenant).status_code == 403
    scoped.close()
    publisher.close()
