"""The catalog-types service with small fakes of its ports (the store's
catalog types and tenants, the catalog refresher): a write refreshes the
tenant's catalog, a refused one writes nothing."""

from __future__ import annotations

import pytest

from tidings.core.catalog import Catalog
from tidings.errors import Conflict, Forbidden, InvalidInput, NotFound
from tidings.services.auth import Principal
from tidings.services.catalog import CatalogTypes
from tidings.store.base import CatalogTypeRecord, TenantRecord

OPERATOR = Principal(kind="admin", scopes=frozenset({"admin", "publish"}))
T1_ADMIN = Principal(kind="key", tenant_id="t1", scopes=frozenset({"admin"}), key_id="k1")
T1_USER_KEY = Principal(kind="key", tenant_id="t1", scopes=frozenset({"publish"}), key_id="k2")
WIDGET = {"fields": "tenantId, widgetId, createdAt"}


class FakeStore:
    """The store's catalog-types and tenants roles, in memory."""

    def __init__(self) -> None:
        self.tenants = {"t1", "t2"}
        self.types: dict[tuple[str, str], CatalogTypeRecord] = {}
        self.writes: list[CatalogTypeRecord] = []

    async def get_tenant(self, tenant_id: str) -> TenantRecord | None:
        if tenant_id not in self.tenants:
            return None
        return TenantRecord(tenant_id, tenant_id, "ACTIVE", {}, 0.0, 0.0)

    async def get_catalog_type(self, tenant_id: str, name: str) -> CatalogTypeRecord | None:
        return self.types.get((tenant_id, name))

    async def put_catalog_type(self, record: CatalogTypeRecord) -> None:
        self.types[(record.tenant_id, record.name)] = record
        self.writes.append(record)

    async def list_catalog_types(self, tenant_id: str | None = None) -> list[CatalogTypeRecord]:
        return [r for (t, _), r in sorted(self.types.items()) if tenant_id in (None, t)]


def service() -> tuple[CatalogTypes, FakeStore, list[str | None]]:
    store = FakeStore()
    shipped = Catalog()  # no shipped types: every name is the tenant's to define
    refreshed: list[str | None] = []

    async def refresh(tenant_id: str | None = None) -> None:
        refreshed.append(tenant_id)

    catalog_types = CatalogTypes(
        store,  # type: ignore[arg-type]
        shipped,
        for_tenant=lambda tenant_id: shipped,
        refresh=refresh,
        clock=lambda: 1000.0,
    )
    return catalog_types, store, refreshed


async def test_a_new_type_is_stored_then_the_tenants_catalog_refreshed() -> None:
    types, store, refreshed = service()
    built = await types.create_type(T1_ADMIN, "t1", "acme.widget.created", {"versions": [WIDGET]})
    assert built.name == "acme.widget.created"
    assert [(r.tenant_id, r.name) for r in store.writes] == [("t1", "acme.widget.created")]
    assert refreshed == ["t1"]


async def test_a_change_and_a_version_refresh_too() -> None:
    types, _, refreshed = service()
    await types.create_type(OPERATOR, "t1", "acme.widget.created", {"versions": [WIDGET]})
    await types.change_type(OPERATOR, "t1", "acme.widget.created", {"description": "A widget"})
    added = await types.add_version(
        OPERATOR, "t1", "acme.widget.created", {"fields": "tenantId, widgetId, createdAt, note?"}
    )
    assert added.number == 2 and added.compatibility.compatible
    assert refreshed == ["t1", "t1", "t1"]


async def test_refused_writes_store_nothing_and_refresh_nothing() -> None:
    types, store, refreshed = service()
    spec = {"versions": [WIDGET]}
    with pytest.raises(Forbidden):
        await types.create_type(T1_ADMIN, "t2", "acme.widget.created", spec)  # another tenant
    with pytest.raises(Forbidden):
        await types.create_type(T1_USER_KEY, "t1", "acme.widget.created", spec)  # not an admin
    with pytest.raises(NotFound):
        await types.create_type(OPERATOR, "t9", "acme.widget.created", spec)  # no such tenant
    with pytest.raises(InvalidInput):
        await types.create_type(OPERATOR, "t1", "acme.widget.created", {})  # no first version
    assert store.writes == [] and refreshed == []


async def test_a_type_is_created_once() -> None:
    types, store, refreshed = service()
    await types.create_type(OPERATOR, "t1", "acme.widget.created", {"versions": [WIDGET]})
    with pytest.raises(Conflict, match="already has"):
        await types.create_type(OPERATOR, "t1", "acme.widget.created", {"versions": [WIDGET]})
    assert len(store.writes) == 1 and refreshed == ["t1"]


async def test_a_bound_credential_sees_its_tenants_catalog_only() -> None:
    types, _, _ = service()
    _, tenant = await types.visible(T1_USER_KEY, None)
    assert tenant == "t1"
    with pytest.raises(Forbidden):
        await types.visible(T1_USER_KEY, "t2")
    with pytest.raises(NotFound):
        await types.visible(OPERATOR, "t9")
