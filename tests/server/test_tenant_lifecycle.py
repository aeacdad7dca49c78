"""Tenant lifecycle (seed 001) end to end: validated transitions with a
lifecycle log and ON_TENANT_* events, and states with teeth."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from support import Admin, ServerProcess, bearer, sse

pytestmark = pytest.mark.asyncio


def move(admin: Admin, tenant: str, to: str, reason: str = "test") -> httpx.Response:
    return admin.http.post(
        f"/api/admin/tenants/{tenant}/transition", json={"to": to, "reason": reason}
    )


def car(tenant: str) -> dict[str, Any]:
    return {"type": "qms.car.updated", "tenantId": tenant, "audiences": ["permission:tenant.read"]}


async def test_transitions_are_validated_logged_and_published(
    server: ServerProcess, admin: Admin
) -> None:
    tenant = admin.tenant()
    assert admin.http.get(f"/api/admin/tenants/{tenant}").json()["state"] == "CREATED"
    token = admin.user(tenant, "ops", "member", grant=["tenant.read"])
    async with sse(server.url, token, params={"types": "ON_TENANT_*"}) as stream:
        assert move(admin, tenant, "PROVISIONING").json()["event"]["position"] > 0
        answer = move(admin, tenant, "ACTIVE", "go live").json()
        assert answer["from"] == "PROVISIONING" and answer["event"]["position"] > 0
        provisioning, event = await stream.events(2)
        assert provisioning["type"] == "ON_TENANT_PROVISIONING"
        assert event["type"] == "ON_TENANT_ACTIVATED" and event["id"] == answer["event"]["id"]
        assert (
            event["data"]["previousState"] == "PROVISIONING"
            and event["data"]["reason"] == "go live"
        )
    refused = move(admin, tenant, "ARCHIVED")
    assert refused.status_code == 409
    assert refused.json()["allowed"] == ["DEPROVISIONING", "READ_ONLY", "SUSPENDED"]
    assert move(admin, tenant, "NOWHERE").status_code == 422
    log = admin.http.get(f"/api/admin/tenants/{tenant}/lifecycle").json()["items"]
    assert [(r["from"], r["to"]) for r in log] == [
        (None, "CREATED"),
        ("CREATED", "PROVISIONING"),
        ("PROVISIONING", "ACTIVE"),
    ]
    assert log[-1]["eventId"] == answer["event"]["id"] and log[-1]["triggerSource"] == "user"


async def test_suspension_closes_streams_and_refuses_publishes_until_reactivated(
    server: ServerProcess, admin: Admin
) -> None:
    tenant = admin.tenant()
    token = admin.user(tenant, "u", "member", grant=["tenant.read"])
    move(admin, tenant, "ACTIVE").raise_for_status()
    async with sse(server.url, token, params={"types": "qms.*"}) as stream:
        move(admin, tenant, "SUSPENDED", "billing").raise_for_status()
        _id, message = await stream.next()
        assert message == {"type": "closed", "reason": "tenant_suspended"}
    refused = admin.publish(car(tenant))
    assert refused.status_code == 409 and refused.json()["state"] == "SUSPENDED"
    assert "SUSPENDED" in refused.json()["detail"]
    reconnect = httpx.get(
        f"{server.url}/api/events", headers={**bearer(token), "Last-Event-ID": "1"}
    )
    assert reconnect.status_code == 204
    move(admin, tenant, "ACTIVE", "paid").raise_for_status()
    async with sse(server.url, token, params={"types": "qms.*"}) as stream:
        sent = admin.publish(car(tenant)).json()
        assert (await stream.events(1))[0]["position"] == sent["position"]


async def test_read_only_keeps_streams_and_history_but_refuses_publishes(
    server: ServerProcess, admin: Admin
) -> None:
    tenant = admin.tenant()
    token = admin.user(tenant, "u", "member", grant=["tenant.read"])
    move(admin, tenant, "ACTIVE").raise_for_status()
    before = admin.publish(car(tenant)).json()
    async with sse(server.url, token, params={"types": "ON_TENANT_*,qms.*"}) as stream:
        move(admin, tenant, "READ_ONLY").raise_for_status()
        (event,) = await stream.events(1)  # still open: it hears about its own state
        assert event["type"] == "ON_TENANT_READ_ONLY"
        assert admin.publish(car(tenant)).status_code == 409
    history = httpx.get(f"{server.url}/api/events/log", headers=bearer(token)).json()["items"]
    assert before["id"] in {e["id"] for e in history}


async def test_archived_is_terminal(server: ServerProcess, admin: Admin) -> None:
    tenant = admin.tenant()
    for state in ("ACTIVE", "DEPROVISIONING", "ARCHIVED"):
        move(admin, tenant, state).raise_for_status()
    refused = move(admin, tenant, "ACTIVE")
    assert refused.status_code == 409 and refused.json()["allowed"] == []
    assert admin.publish(car(tenant)).status_code == 409
