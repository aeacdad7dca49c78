"""Redaction is decided per (tenant, type): tenants may define types of the
same name with different sensitive fields, and no tenant's definition
changes what another tenant's subscribers see, live (dispatch), on replay
(``frame_for``) or in history (``sensitive_for``)."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from support import Admin, ServerProcess, bearer, sse
from tidings.catalog import load_catalog
from tidings.catalog.tenants import TenantCatalogs
from tidings.core.audience import UserRecord, Viewer
from tidings.core.envelope import Event
from tidings.core.redaction import redact, variant_for
from tidings.hub.hub import Hub
from tidings.store.base import CatalogTypeRecord

TYPE = "acme.doc.filed"
PATHS = ("data.a", "data.b", "data.c", "metadata.m")
PERMISSIONS = ("p1", "p2", "p3")
SHIPPED = load_catalog()

definitions = st.dictionaries(st.sampled_from(PATHS), st.sampled_from(PERMISSIONS))
tenants = st.lists(definitions, min_size=2, max_size=4)
viewer_permissions = st.lists(
    st.frozensets(st.sampled_from((*PERMISSIONS, "docs.read"))), min_size=1, max_size=4
)


def _record(tenant: str, sensitive: dict[str, str]) -> CatalogTypeRecord:
    spec = {
        "description": "A document was filed",
        "audiences": ["permission:docs.read"],
        "sensitive": sensitive,
        "versions": [{"fields": "a?, b?, c?"}],
    }
    return CatalogTypeRecord(tenant, TYPE, spec, True, 0.0, 0.0)


def _catalogs(defined: dict[str, dict[str, str]]) -> TenantCatalogs:
    """Real tenant catalogs holding ``defined`` (the path ``refresh`` takes
    once the store has answered)."""
    catalogs = TenantCatalogs(SHIPPED, store=None, refresh_s=0)  # type: ignore[arg-type]
    for tenant, sensitive in defined.items():
        catalogs._apply(tenant, [_record(tenant, sensitive)])
    return catalogs


def _event(tenant: str) -> Event:
    return Event(
        position=9,
        id="evt_1",
        tenant_id=tenant,
        type=TYPE,
        entity_type="doc",
        entity_id="d1",
        action="FILED",
        timestamp="2025-11-06T09:00:00Z",
        actor=None,
        data={"a": "A", "b": "B", "c": "C"},
        metadata={"m": "M"},
        audiences=("permission:docs.read",),
        schema="payload.doc.v1",
    )


def _viewer(tenant: str, index: int, permissions: frozenset[str]) -> Viewer:
    return Viewer.for_user(UserRecord(tenant, f"u{index}", "r"), {"r": sorted(permissions)})


@settings(max_examples=150, deadline=None)
@given(definitions_per_tenant=tenants, viewers=viewer_permissions)
def test_no_tenant_changes_what_another_tenants_subscribers_see(
    definitions_per_tenant: list[dict[str, str]], viewers: list[frozenset[str]]
) -> None:
    defined = {f"t{i}": sensitive for i, sensitive in enumerate(definitions_per_tenant)}
    together = _catalogs(defined)
    hub = Hub(sensitive=together.sensitive, heartbeat_s=60.0, retry_ms=1000)
    for tenant, own in defined.items():
        alone = _catalogs({tenant: own})  # as if no other tenant existed
        event = _event(tenant)
        live = hub.frames_for(event)
        for index, permissions in enumerate(viewers):
            viewer = _viewer(tenant, index, permissions)
            expected = redact(event.to_wire(), own, variant_for(viewer, own))
            frame = live if not callable(live) else live(viewer)
            assert orjson.loads(frame.json) == expected  # live dispatch
            assert orjson.loads(hub.frame_for(event, viewer).json) == expected  # replay
            history = together.sensitive(tenant, TYPE)  # what /api/events/log redacts with
            assert history == alone.sensitive(tenant, TYPE) == own
            assert redact(event.to_wire(), history, variant_for(viewer, history)) == expected


def test_a_tenant_without_the_type_sees_no_other_tenants_definition() -> None:
    catalogs = _catalogs({"t1": {"data.a": "p1"}})
    assert catalogs.sensitive("t2", TYPE) == {}
    assert catalogs.for_tenant("t2").find(TYPE) is None


def _define(admin: Admin, tenant: str, sensitive: dict[str, str]) -> None:
    created = admin.http.post(
        f"/api/admin/catalog/{tenant}/types",
        json={
            "name": "acme.badge.issued",
            "description": "A badge was issued",
            "audiences": ["permission:widgets.read"],
            "sensitive": sensitive,
            "fields": "badgeId, holderEmail:email",
        },
    )
    assert created.status_code == 201, created.text


def _badge(tenant: str) -> dict[str, Any]:
    return {
        "type": "acme.badge.issued",
        "tenantId": tenant,
        "data": {"badgeId": "b1", "holderEmail": "h@example.com"},
    }


@pytest.mark.asyncio
async def test_colliding_type_names_over_http(server: ServerProcess, admin: Admin) -> None:
    """Tenant ``strict`` hides the e-mail; tenant ``loose`` defines the same
    name with the e-mail visible to every reader and the badge id hidden.
    Whatever the order the hub loads them in, each tenant's plain readers
    see exactly what their own definition says: live, on replay, in history."""
    strict, loose = admin.tenant(), admin.tenant()
    _define(admin, strict, {"data.holderEmail": "widgets.pii.read"})
    _define(admin, loose, {"data.holderEmail": "widgets.read", "data.badgeId": "widgets.pii.read"})
    expected = {strict: {"badgeId": "b1"}, loose: {"holderEmail": "h@example.com"}}
    readers = {}
    for tenant in (strict, loose):
        admin.role("reader", ["widgets.read"], tenant_id=tenant)
        readers[tenant] = admin.user(tenant, "plain", "reader")
    positions = {}
    for tenant in (strict, loose):
        async with sse(server.url, readers[tenant]) as live:
            response = admin.publish(_badge(tenant))
            assert response.status_code == 202, response.text
            positions[tenant] = int(response.json()["position"])
            (seen,) = await live.events(1)
        assert seen["data"] == expected[tenant]
    for tenant in (strict, loose):
        resume = {"Last-Event-ID": str(positions[tenant] - 1)}
        async with sse(server.url, readers[tenant], headers=resume) as replay:
            (replayed,) = await replay.events(1)
        assert replayed["position"] == positions[tenant]
        assert replayed["data"] == expected[tenant]
        history = httpx.get(
            f"{server.url}/api/events/log",
            params={"types": "acme.badge.issued"},
            headers=bearer(readers[tenant]),
        )
        (item,) = history.json()["items"]
        assert item["data"] == expected[tenant]
