"""PII redaction (seed 000): fields the catalog marks sensitive are removed
for subscribers lacking the permission, on the live stream, on replay
(Last-Event-ID) and in history, for shipped and tenant-defined types; the
hub encodes each event once per redaction variant."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

from support import Admin, ServerProcess, bearer, sse
from tidings.catalog import load_catalog
from tidings.catalog.tenants import TenantCatalogs
from tidings.core.audience import UserRecord, Viewer
from tidings.core.envelope import Event
from tidings.hub.hub import Hub
from tidings.hub.stream import Frame

NOW = "2025-11-06T09:00:00Z"
CONTACT = {
    "contactId": "ct1",
    "clientId": "cl1",
    "fullName": "Rana Haddad",
    "email": "rana@example.com",
    "phoneNumber": "+961 1 234567",
    "createdByUserId": "u1",
    "createdAt": NOW,
}
PII = ("fullName", "email", "phoneNumber")


def _cast(admin: Admin, tenant: str) -> dict[str, str]:
    admin.role("crm", ["crm.read", "widgets.read"], tenant_id=tenant)
    admin.role(
        "crm-pii",
        ["crm.read", "crm.pii.read", "widgets.read", "widgets.pii.read"],
        tenant_id=tenant,
    )
    return {
        "plain": admin.user(tenant, "plain", "crm"),
        "pii": admin.user(tenant, "pii", "crm-pii"),
    }


def _publish(admin: Admin, event: dict[str, Any]) -> int:
    response = admin.publish(event)
    assert response.status_code == 202, response.text
    return int(response.json()["position"])


def _contact(tenant: str) -> dict[str, Any]:
    return {"type": "CONTACT_CREATED", "tenantId": tenant, "data": {**CONTACT, "tenantId": tenant}}


def _assert_redacted(event: dict[str, Any]) -> None:
    assert not set(PII) & set(event["data"]), event["data"]
    assert event["data"]["contactId"] == "ct1" and event["data"]["clientId"] == "cl1"


def _assert_full(event: dict[str, Any]) -> None:
    assert {k: event["data"][k] for k in PII} == {k: CONTACT[k] for k in PII}


@pytest.mark.asyncio
async def test_live_stream_and_replay(server: ServerProcess, admin: Admin) -> None:
    tenant = admin.tenant()
    users = _cast(admin, tenant)
    async with sse(server.url, users["plain"]) as plain, sse(server.url, users["pii"]) as pii:
        position = _publish(admin, _contact(tenant))
        (seen_plain,) = await plain.events(1)
        (seen_pii,) = await pii.events(1)
    _assert_redacted(seen_plain)
    _assert_full(seen_pii)
    assert seen_plain["position"] == seen_pii["position"] == position
    resume = {"Last-Event-ID": str(position - 1)}
    async with (
        sse(server.url, users["plain"], headers=resume) as plain,
        sse(server.url, users["pii"], headers=resume) as pii,
    ):
        (replayed_plain,) = await plain.events(1)
        (replayed_pii,) = await pii.events(1)
    assert replayed_plain["position"] == position
    _assert_redacted(replayed_plain)
    _assert_full(replayed_pii)


def test_history(server: ServerProcess, admin: Admin) -> None:
    tenant = admin.tenant()
    users = _cast(admin, tenant)
    _publish(admin, _contact(tenant))
    params = {"types": "CONTACT_CREATED"}
    plain = httpx.get(f"{server.url}/api/events/log", params=params, headers=bearer(users["plain"]))
    pii = httpx.get(f"{server.url}/api/events/log", params=params, headers=bearer(users["pii"]))
    (item_plain,) = plain.json()["items"]
    (item_pii,) = pii.json()["items"]
    _assert_redacted(item_plain)
    _assert_full(item_pii)
    operator = admin.http.get("/api/events/log", params={**params, "tenantId": tenant})
    _assert_full(operator.json()["items"][0])


@pytest.mark.asyncio
async def test_tenant_defined_sensitive_fields(server: ServerProcess, admin: Admin) -> None:
    tenant = admin.tenant()
    users = _cast(admin, tenant)
    created = admin.http.post(
        f"/api/admin/catalog/{tenant}/types",
        json={
            "name": "acme.badge.issued",
            "description": "A badge was issued",
            "audiences": ["permission:widgets.read"],
            "sensitive": {"data.holderEmail": "widgets.pii.read"},
            "fields": "badgeId, holderEmail:email, issuedAt",
        },
    )
    assert created.status_code == 201, created.text
    event = {
        "type": "acme.badge.issued",
        "tenantId": tenant,
        "data": {"badgeId": "b1", "holderEmail": "h@example.com", "issuedAt": NOW},
    }
    async with sse(server.url, users["plain"]) as plain, sse(server.url, users["pii"]) as pii:
        position = _publish(admin, event)
        (seen_plain,) = await plain.events(1)
        (seen_pii,) = await pii.events(1)
    assert seen_plain["data"] == {"badgeId": "b1", "issuedAt": NOW}
    assert seen_pii["data"]["holderEmail"] == "h@example.com"
    history = httpx.get(
        f"{server.url}/api/events/log",
        params={"types": "acme.badge.*"},
        headers=bearer(users["plain"]),
    )
    assert history.json()["items"][0]["position"] == position
    assert "holderEmail" not in history.json()["items"][0]["data"]


def test_one_encoding_per_redaction_variant() -> None:
    """Four viewers, two variants: the hub builds two frames, not four."""
    shipped = load_catalog()
    catalogs = TenantCatalogs(shipped, store=None, refresh_s=0)  # type: ignore[arg-type]
    hub = Hub(sensitive=catalogs.sensitive, heartbeat_s=60.0, retry_ms=1000)
    event = _contact_created({**CONTACT, "tenantId": "t"})
    roles = {"plain": ["crm.read"], "pii": ["crm.read", "crm.pii.read"]}
    viewers = [
        Viewer.for_user(UserRecord("t", f"u{i}", role), roles)
        for i, role in enumerate(["plain", "pii"] * 2)
    ]
    frame_for = hub.frames_for(event)
    frames = [frame_for(v) for v in viewers]
    assert frames[0] is frames[2] and frames[1] is frames[3] and frames[0] is not frames[1]
    _assert_redacted(orjson.loads(frames[0].json))
    _assert_full(orjson.loads(frames[1].json))


def test_an_event_without_its_sensitive_fields_is_encoded_once() -> None:
    shipped = load_catalog()
    catalogs = TenantCatalogs(shipped, store=None, refresh_s=0)  # type: ignore[arg-type]
    hub = Hub(sensitive=catalogs.sensitive, heartbeat_s=60.0, retry_ms=1000)
    data = {k: v for k, v in CONTACT.items() if k not in PII} | {"tenantId": "t"}
    event = _contact_created(data)
    frame = hub.frames_for(event)
    assert isinstance(frame, Frame)  # shared by every viewer
    assert orjson.loads(frame.json) == event.to_wire()


def _contact_created(data: dict[str, Any]) -> Event:
    return Event(
        position=7,
        id="evt_1",
        tenant_id="t",
        type="CONTACT_CREATED",
        entity_type="contact",
        entity_id="ct1",
        action="CREATED",
        timestamp=NOW,
        actor=None,
        metadata={},
        data=data,
        audiences=("permission:crm.read",),
        schema="payload.ContactCreated.v1",
    )
