"""The Tidings node: every component of one process, wired, started and
stopped together. Embed it (``Tidings(settings)``, ``await hub.publish``) or
serve it over HTTP (:func:`tidings.http.app.create_app`).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tidings.appender import Appender
from tidings.auth import Authenticator, Principal
from tidings.catalog import load_catalog
from tidings.catalog.tenants import TenantCatalogs
from tidings.config import Settings
from tidings.core.catalog import Catalog
from tidings.errors import InvalidInput
from tidings.hub.feed import Feed
from tidings.hub.hub import Hub
from tidings.hub.stream import USER_DELETED, BaseStream
from tidings.ingest import Ingest
from tidings.notifications import Notifications
from tidings.retention import Retention
from tidings.store.base import AppendResult, NewEvent
from tidings.store.migrate import upgrade
from tidings.store.signals import LocalSignals, PostgresSignals, Signals
from tidings.store.sql import SQLStore

log = logging.getLogger("tidings")


class Tidings:
    def __init__(self, settings: Settings, *, catalog: Catalog | None = None) -> None:
        self.settings = settings
        if catalog is None:  # the shipped packs and any configured ones; broken -> CatalogError
            catalog = load_catalog(Path(d) for d in settings.catalog_dirs)
        self.catalog = catalog
        # Names this process in notifications, so it can ignore its own.
        self.node_id = secrets.token_hex(8)
        self.store = SQLStore(
            settings.database_url,
            pool_size=settings.pool_size,
            sqlite_synchronous=settings.sqlite_synchronous,
            origin=self.node_id,
        )
        self.catalogs = TenantCatalogs(self.catalog, self.store, refresh_s=settings.cache_ttl_s)
        self.hub = Hub(
            sensitive=self._sensitive,
            heartbeat_s=settings.heartbeat_s,
            retry_ms=settings.retry_ms,
        )
        self.feed = Feed(self.store, self.hub, poll_s=settings.poll_s)
        self.appender = Appender(self.store, self.feed)
        self.ingest = Ingest(
            self.catalogs.for_tenant,
            max_event_bytes=settings.max_event_bytes,
            validate_payloads=settings.validate_payloads,
        )
        self.auth = Authenticator(
            self.store,
            admin_key=settings.admin_key,
            jwt_secret=settings.jwt_secret,
            jwks_url=settings.jwks_url,
            jwt_audience=settings.jwt_audience,
            cache_ttl=settings.cache_ttl_s,
        )
        self.retention = Retention(
            self.store,
            default_days=settings.retention_days,
            interval_s=settings.retention_interval_s,
        )
        self.signals: Signals = (
            LocalSignals() if self.store.is_sqlite else PostgresSignals(self.store.url)
        )
        self.notifications = Notifications(self)
        self.started = False
        self._background: set[asyncio.Task[None]] = set()

    def _sensitive(self, event_type: str) -> Any:
        return self.catalogs.sensitive_any(event_type)

    def sensitive_for(self, tenant_id: str, event_type: str) -> Any:
        """The sensitive fields of ``event_type`` as tenant ``tenant_id`` defines it."""
        return self.catalogs.sensitive(tenant_id, event_type)

    async def start(self) -> None:
        if self.settings.auto_migrate:
            await upgrade(self.settings.database_url)
        await self.store.open()
        await self.catalogs.start()
        await self.feed.start()
        await self.signals.start(self._on_log, self._on_control)
        self.retention.start()
        self.appender.start()
        self.hub.start()
        self.started = True
        log.info("tidings started", extra={"position": self.hub.position})

    async def stop(self) -> None:
        if not self.started:
            return
        self.started = False
        await self.appender.stop()
        await self.hub.stop()
        await self.retention.stop()
        await self.signals.stop()
        await self.feed.stop()
        await self.catalogs.stop()
        await self.store.close()

    # -- cross-process signals --------------------------------------------

    def _on_log(self, head: int, origin: str) -> None:
        if origin == self.node_id:
            return  # our own commit: the appender hands it to the feed directly
        if head < 0 or head > self.hub.position:
            self.feed.wake()

    async def control(self, kind: str, **fields: Any) -> None:
        """Identity data changed (``user_changed``, ``user_deleted``,
        ``roles_changed``, ``tenant_changed``): apply it here before
        returning, then tell the other processes."""
        message = {"kind": kind, "origin": self.node_id, **fields}
        await self._apply_control(message)
        await self.signals.send_control(message)

    def _on_control(self, message: dict[str, Any]) -> None:
        if message.get("origin") == self.node_id:
            return  # applied when sent
        task = asyncio.get_running_loop().create_task(self._apply_control(message))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _apply_control(self, message: dict[str, Any]) -> None:
        kind, tenant_id = message.get("kind"), message.get("tenant")
        if kind == "user_deleted":
            self.hub.close_user(str(tenant_id), str(message.get("user")), USER_DELETED)
        elif kind in ("user_changed", "roles_changed"):
            self.auth.roles.drop()
            await self.refresh_streams(
                tenant_id, user_id=message.get("user"), role=message.get("role")
            )
        elif kind == "tenant_changed":
            self.auth.tenants.drop(tenant_id)

    async def refresh_streams(
        self, tenant_id: str | None, *, user_id: str | None = None, role: str | None = None
    ) -> int:
        """Re-derive the audiences of affected open streams from the store."""
        by_user: dict[tuple[str, str], list[BaseStream]] = {}
        for stream in self.hub.index:
            key = stream.user_key
            if key is None or (tenant_id is not None and key[0] != tenant_id):
                continue
            if user_id is None or key[1] == user_id:
                by_user.setdefault(key, []).append(stream)
        refreshed = 0
        for (tenant, uid), streams in by_user.items():
            user = await self.store.get_user(tenant, uid)
            if user is None or (role is not None and user.system_role != role):
                continue
            viewer = await self.auth.viewer_for(user)
            for stream in streams:
                if not stream.closed:
                    self.hub.update_viewer(stream, viewer)
                    refreshed += 1
        return refreshed

    async def publish(
        self,
        event: dict[str, Any],
        *,
        principal: Principal | None = None,
        idempotency_key: str | None = None,
    ) -> AppendResult:
        """Publish one event in-process (as the operator unless a principal
        is given). Returns once the event is durable."""
        who = principal or Principal(kind="admin", scopes=frozenset({"admin", "publish"}))
        prepared = self.ingest.prepare(event, who, idempotency_key=idempotency_key)
        (result,) = await self.append([prepared])
        return result

    async def publish_many(
        self, events: Sequence[dict[str, Any]], *, principal: Principal | None = None
    ) -> list[AppendResult]:
        who = principal or Principal(kind="admin", scopes=frozenset({"admin", "publish"}))
        return await self.append(self.ingest.prepare_batch(events, who))

    async def append(
        self, prepared: Sequence[NewEvent], *, pointer: str = "/events/"
    ) -> list[AppendResult]:
        """Append validated events once their tenants are known to accept
        them; returns when they are durable."""
        checked: set[str] = set()
        for i, new in enumerate(prepared):
            tenant_id = new.event.tenant_id
            if tenant_id in checked:
                continue
            if await self.auth.tenant(tenant_id) is None:
                where = f"{pointer}{i}/tenantId" if len(prepared) > 1 else "/tenantId"
                raise InvalidInput(f"unknown tenant {tenant_id!r}", field=where)
            checked.add(tenant_id)
        return await self.appender.append(prepared)
