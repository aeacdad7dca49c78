"""The catalog each tenant sees: the shipped packs plus the tenant's own
types (stored, added through ``/api/admin/catalog``).

Publishing looks catalogs up synchronously, so they live in memory: loaded
at start-up, rebuilt for a tenant at once after a local write, and
re-read every ``refresh_s`` seconds so writes made by other processes
arrive within that bound. Only tenants whose stored types changed are
rebuilt; validators compiled for unchanged types are kept.

Isolation: a tenant's types live in that tenant's catalog only. Two tenants
may define a type of the same name with different sensitive fields; every
lookup (publishing, redaction live, on replay and in history) names the
event's tenant, so no tenant's definition changes what another tenant's
subscribers see. There is no cross-tenant merge by type name.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from tidings.core.catalog import Catalog, CatalogError, EventType
from tidings.core.catalog_packs import build_event_type
from tidings.errors import TidingsError
from tidings.periodic import Periodic
from tidings.store.base import CatalogTypeRecord
from tidings.store.ports import CatalogTypes
from tidings.supervision import Supervisor

log = logging.getLogger("tidings.catalog")
DEFAULT_REFRESH_S = 5.0
_NONE: Mapping[str, str] = {}


def tenant_event_type(record: CatalogTypeRecord) -> EventType:
    """Build the event type of a stored record (validated like a pack entry)."""
    spec = {**record.spec, "active": record.active}
    return build_event_type(
        record.name,
        spec,
        pack=f"tenant:{record.tenant_id}",
        defaults={},
        tenant_id=record.tenant_id,
    )


def _fingerprint(record: CatalogTypeRecord) -> bytes:
    return orjson.dumps([record.spec, record.active], option=orjson.OPT_SORT_KEYS)


class TenantCatalogs:
    def __init__(
        self, shipped: Catalog, store: CatalogTypes, *, refresh_s: float = DEFAULT_REFRESH_S
    ) -> None:
        self.shipped = shipped
        self.store = store
        self.refresh_s = refresh_s
        self._catalogs: dict[str, Catalog] = {}
        self._types: dict[str, dict[str, tuple[bytes, EventType]]] = {}
        self._poller = Periodic(refresh_s, self.refresh, log, "tenant catalog")

    # -- lookups (synchronous, for the publish and delivery paths) ---------

    def for_tenant(self, tenant_id: str | None) -> Catalog:
        if tenant_id is None:
            return self.shipped
        return self._catalogs.get(tenant_id, self.shipped)

    def sensitive(self, tenant_id: str, event_type: str) -> Mapping[str, str]:
        """The sensitive fields of ``event_type`` as ``tenant_id`` sees it:
        the shipped type's, else that tenant's own definition. Never another
        tenant's (two dictionary lookups: the hub calls this per event)."""
        found = self._catalogs.get(tenant_id, self.shipped).find(event_type)
        return found.sensitive if found is not None else _NONE

    # -- loading ----------------------------------------------------------

    async def refresh(self, tenant_id: str | None = None) -> None:
        """Re-read one tenant's types (after a local write) or everyone's."""
        records = await self.store.list_catalog_types(tenant_id)
        by_tenant: dict[str, list[CatalogTypeRecord]] = {}
        for record in records:
            by_tenant.setdefault(record.tenant_id, []).append(record)
        tenants = (
            [tenant_id] if tenant_id is not None else sorted(set(self._types) | set(by_tenant))
        )
        for tenant in tenants:
            self._apply(tenant, by_tenant.get(tenant, []))

    def _apply(self, tenant_id: str, records: Iterable[CatalogTypeRecord]) -> None:
        old = self._types.get(tenant_id, {})
        new: dict[str, tuple[bytes, EventType]] = {}
        changed = False
        for record in records:
            fingerprint = _fingerprint(record)
            kept = old.get(record.name)
            if kept is not None and kept[0] == fingerprint:
                new[record.name] = kept
                continue
            changed = True
            try:
                new[record.name] = (fingerprint, tenant_event_type(record))
            except CatalogError as exc:  # stored before a stricter rule: skip, loudly
                log.error("tenant %s: catalog type %s skipped: %s", tenant_id, record.name, exc)
        if not changed and new.keys() == old.keys():
            return
        types = [t for _, t in new.values() if t.name not in self.shipped]
        for name in sorted(set(new) - {t.name for t in types}):
            log.error(
                "tenant %s: type %s now ships in a pack; the tenant's is hidden", tenant_id, name
            )
        if new:
            self._types[tenant_id] = new
            self._catalogs[tenant_id] = self.shipped.with_types(types)
        else:
            self._types.pop(tenant_id, None)
            self._catalogs.pop(tenant_id, None)

    async def start(self, supervisor: Supervisor | None = None) -> None:
        try:
            await self.refresh()
        except TidingsError as exc:  # the poller below retries
            log.warning("tenant catalog types not loaded yet: %s", exc)
        self._poller.start(supervisor)

    async def stop(self) -> None:
        await self._poller.stop()


def stored_spec(event_type_spec: Mapping[str, Any]) -> dict[str, Any]:
    """The entry as stored: everything but the active flag (a column)."""
    return {k: v for k, v in event_type_spec.items() if k != "active"}
