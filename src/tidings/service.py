"""The Tidings node: every component of one process, wired, started and
stopped together. Embed it (``Tidings(settings)``, ``await hub.publish``) or
serve it over HTTP (:func:`tidings.http.app.create_app`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from tidings.appender import Appender
from tidings.auth import Authenticator, Principal
from tidings.catalog import load_catalog
from tidings.config import Settings
from tidings.core.catalog import Catalog
from tidings.errors import InvalidInput
from tidings.hub.feed import Feed
from tidings.hub.hub import Hub
from tidings.ingest import Ingest
from tidings.store.base import AppendResult, NewEvent
from tidings.store.migrate import upgrade
from tidings.store.sql import SQLStore

log = logging.getLogger("tidings")


class Tidings:
    def __init__(self, settings: Settings, *, catalog: Catalog | None = None) -> None:
        self.settings = settings
        self.catalog = catalog if catalog is not None else load_catalog()
        self.store = SQLStore(
            settings.database_url,
            pool_size=settings.pool_size,
            sqlite_synchronous=settings.sqlite_synchronous,
        )
        self.hub = Hub(
            sensitive=self._sensitive,
            heartbeat_s=settings.heartbeat_s,
            retry_ms=settings.retry_ms,
        )
        self.feed = Feed(self.store, self.hub, poll_s=settings.poll_s)
        self.appender = Appender(self.store, self.feed)
        self.ingest = Ingest(
            lambda _tenant: self.catalog,
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
        self.started = False

    def _sensitive(self, event_type: str) -> Any:
        if event_type in self.catalog:
            return self.catalog.get(event_type).sensitive
        return {}

    async def start(self) -> None:
        if self.settings.auto_migrate:
            await upgrade(self.settings.database_url)
        await self.store.open()
        await self.feed.start()
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
        await self.feed.stop()
        await self.store.close()

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
