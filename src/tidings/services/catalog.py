"""The catalog each caller sees, and tenant-defined event types: the use
cases behind ``/api/catalog`` and ``/api/admin/catalog/{tenantId}/types``.

Authorization (:mod:`tidings.services.access`): ``catalog.read`` for any
credential (users and tenant-bound keys see their tenant's catalog, global
credentials the shipped one or a named tenant's), ``catalog.write`` for an
admin credential of the tenant. Refusals come before any write.

A tenant type is validated exactly like a pack entry and can never shadow
a shipped one. Follow-up signal: every write rebuilds that tenant's
catalog in this process before returning (other processes within their
refresh interval), so the next publish here validates against it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from tidings.catalog.tenants import stored_spec
from tidings.core.catalog import Catalog, CatalogError, EventType
from tidings.core.catalog_packs import build_event_type
from tidings.core.compat import Compatibility, compare
from tidings.core.conventions import check_type
from tidings.errors import Conflict, InvalidInput, NotFound
from tidings.services.access import authorize
from tidings.services.auth import Principal
from tidings.services.ports import CatalogRefresh
from tidings.store import ports
from tidings.store.base import CatalogTypeRecord

TENANT_CONVENTIONS = ("transitions", "updates")


@dataclass(frozen=True, slots=True)
class NewVersion:
    event_type: EventType  # the type with the new version
    number: int  # the new version's number
    compatibility: Compatibility  # against the version before


class CatalogStore(ports.CatalogTypes, ports.Directory, Protocol):
    """The store roles the catalog use cases use (types; tenants exist)."""


def _pointer(location: tuple[str | int, ...]) -> str:
    """A CatalogError location (("types", name, ...)) as a body pointer."""
    rest = location[2:] if location[:1] == ("types",) else location
    return "".join(f"/{part}" for part in rest)


def build_tenant_type(
    tenant_id: str, name: str, spec: dict[str, Any], shipped: Catalog
) -> EventType:
    """Validate an entry exactly like a pack entry; refuse shadowing (409)."""
    if name in shipped:
        raise Conflict(
            f"{name!r} is a shipped event type (pack {shipped.get(name).pack!r}); "
            "tenant types cannot shadow it",
            field="/name",
        )
    try:
        event_type = build_event_type(
            name, spec, pack=f"tenant:{tenant_id}", defaults={}, tenant_id=tenant_id
        )
        if not spec.get("versions"):
            raise CatalogError("declare the first version: fields or schema", location=())
        check_type(event_type, naming=None, conventions=TENANT_CONVENTIONS)
    except CatalogError as exc:
        raise InvalidInput(exc.message, field=_pointer(exc.location)) from None
    return event_type


class CatalogTypes:
    """Uses the store's ``CatalogTypes`` role and ``Directory`` (does the
    tenant exist), the shipped catalog, ``for_tenant`` (the catalog a
    tenant sees) and ``refresh`` (rebuild a tenant's catalog)."""

    def __init__(
        self,
        store: CatalogStore,
        shipped: Catalog,
        *,
        for_tenant: Callable[[str | None], Catalog],
        refresh: CatalogRefresh,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.shipped = shipped
        self._for_tenant = for_tenant
        self._refresh = refresh
        self._clock = clock

    # -- reading ------------------------------------------------------------

    async def visible(
        self, principal: Principal, requested: str | None
    ) -> tuple[Catalog, str | None]:
        """The catalog the caller sees and its tenant (None: shipped only):
        a bound credential's own tenant, else ``requested`` (404 if unknown)."""
        authorize(
            principal, "catalog.read", requested, scoped=requested is not None, field="tenantId"
        )
        if principal.tenant_id is not None:
            tenant_id: str | None = principal.tenant_id
        else:
            tenant_id = requested
            if tenant_id is not None:
                await self._known(tenant_id)
        return self._for_tenant(tenant_id), tenant_id

    async def list_types(self, principal: Principal, tenant_id: str) -> list[CatalogTypeRecord]:
        """The tenant's own types as stored."""
        await self._writable(principal, tenant_id)
        return await self.store.list_catalog_types(tenant_id)

    async def get_type(self, principal: Principal, tenant_id: str, name: str) -> CatalogTypeRecord:
        await self._writable(principal, tenant_id)
        return await self._stored(tenant_id, name)

    # -- writing ------------------------------------------------------------

    async def create_type(
        self, principal: Principal, tenant_id: str, name: str, spec: dict[str, Any]
    ) -> EventType:
        """Add a type (409 if the tenant has it, or it ships)."""
        await self._writable(principal, tenant_id)
        event_type = build_tenant_type(tenant_id, name, spec, self.shipped)
        if await self.store.get_catalog_type(tenant_id, name) is not None:
            raise Conflict(
                f"tenant {tenant_id!r} already has {name!r}; add a version instead", field="/name"
            )
        now = self._clock()
        record = CatalogTypeRecord(tenant_id, name, {}, event_type.active, now, now)
        await self._save(record, spec, event_type.active)
        return event_type

    async def change_type(
        self, principal: Principal, tenant_id: str, name: str, changes: Mapping[str, Any]
    ) -> EventType:
        """Apply ``changes`` (keys other than the versions; None removes one)."""
        await self._writable(principal, tenant_id)
        record = await self._stored(tenant_id, name)
        spec = {**record.spec, "active": record.active}
        for key, value in changes.items():
            if value is None:
                spec.pop(key, None)
            else:
                spec[key] = value
        built = build_tenant_type(tenant_id, name, spec, self.shipped)
        await self._save(record, spec, built.active)
        return built

    async def add_version(
        self,
        principal: Principal,
        tenant_id: str,
        name: str,
        version: dict[str, Any],
        *,
        require_compatible: bool = False,
    ) -> NewVersion:
        """Add a schema version (older ones stay accepted); with
        ``require_compatible``, 409 for one not backward compatible."""
        await self._writable(principal, tenant_id)
        record = await self._stored(tenant_id, name)
        versions = [*record.spec.get("versions", []), version]
        spec = {**record.spec, "versions": versions, "active": record.active}
        try:
            built = build_tenant_type(tenant_id, name, spec, self.shipped)
        except InvalidInput as exc:
            index = f"/versions/{len(versions) - 1}"
            if exc.field and exc.field.startswith(index):
                exc.field = exc.field[len(index) :]
            raise
        number = built.latest
        report = compare(built.versions[number - 1], built.versions[number])
        if require_compatible and not report.compatible:
            raise Conflict(
                f"version {number} is not backward compatible with version {number - 1}",
                compatibility=report.to_json(),
            )
        await self._save(record, spec, record.active)
        return NewVersion(built, number, report)

    # -- helpers ------------------------------------------------------------

    async def _known(self, tenant_id: str) -> None:
        if await self.store.get_tenant(tenant_id) is None:
            raise NotFound(f"unknown tenant {tenant_id!r}")

    async def _writable(self, principal: Principal, tenant_id: str) -> None:
        authorize(principal, "catalog.write", tenant_id)
        await self._known(tenant_id)

    async def _stored(self, tenant_id: str, name: str) -> CatalogTypeRecord:
        record = await self.store.get_catalog_type(tenant_id, name)
        if record is None:
            raise NotFound(f"tenant {tenant_id!r} has no event type {name!r}")
        return record

    async def _save(
        self, record: CatalogTypeRecord, spec: dict[str, Any], active: bool
    ) -> CatalogTypeRecord:
        saved = CatalogTypeRecord(
            tenant_id=record.tenant_id,
            name=record.name,
            spec=stored_spec(spec),
            active=active,
            created_at=record.created_at,
            updated_at=self._clock(),
        )
        await self.store.put_catalog_type(saved)
        await self._refresh(record.tenant_id)
        return saved
