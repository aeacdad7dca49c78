"""Log retention: delete old events per tenant, in small batches.

A tenant's ``settings.retentionDays`` overrides the global
``retention_days`` (0 keeps everything). Each batch is its own short
transaction (no long locks), with a pause between batches; on PostgreSQL
one process prunes at a time. Pruning moves the tenant's log horizon, so a
stream that resumes from before it gets an explicit ``reset`` instead of a
silent gap.
"""

from __future__ import annotations

import asyncio
import logging
import time

from tidings.errors import TidingsError
from tidings.store.base import Store, TenantRecord

log = logging.getLogger("tidings.retention")
DAY = 86_400.0


def retention_days(tenant: TenantRecord, default_days: float) -> float:
    value = tenant.settings.get("retentionDays", default_days)
    return float(value) if isinstance(value, (int, float)) and value > 0 else 0.0


class Retention:
    def __init__(
        self,
        store: Store,
        *,
        default_days: float,
        interval_s: float,
        batch: int = 1000,
        pause_s: float = 0.05,
    ) -> None:
        self.store = store
        self.default_days = default_days
        self.interval_s = interval_s
        self.batch = batch
        self.pause_s = pause_s
        self._task: asyncio.Task[None] | None = None
        self.deleted = 0

    def start(self) -> None:
        if self.interval_s > 0:
            self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.run_once()
            except TidingsError as exc:
                log.warning("retention pass skipped: %s", exc)

    async def run_once(self) -> int:
        """One pass over every tenant; returns how many events were deleted."""
        deleted = 0
        now = time.time()
        for tenant in await self.store.list_tenants():
            days = retention_days(tenant, self.default_days)
            if days <= 0:
                continue
            while True:
                count = await self.store.prune_events(tenant.id, now - days * DAY, self.batch)
                deleted += count
                if count < self.batch:
                    break
                await asyncio.sleep(self.pause_s)
        if deleted:
            log.info("retention deleted %d events", deleted)
        self.deleted += deleted
        return deleted
