"""Log retention: delete old events per tenant, in small batches.

A tenant's ``settings.retentionDays`` overrides the global
``retention_days`` (0 keeps everything). Each batch is its own short
transaction (no long locks), with a pause between batches; on PostgreSQL
one process prunes at a time. Pruning moves the tenant's log horizon, so a
stream that resumes from before it gets an explicit ``reset`` instead of a
silent gap.

Automation jobs that finished (succeeded or discarded) are deleted after
``job_retention_days``; dead jobs never are (an operator retries or
discards them), and an event with unfinished jobs is never pruned.
"""

from __future__ import annotations

import asyncio
import logging
import time

from tidings.periodic import Periodic
from tidings.store.base import Store, TenantRecord
from tidings.store.ports import JobQueue
from tidings.supervision import Supervisor

log = logging.getLogger("tidings.services.retention")
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
        jobs: JobQueue | None = None,
        job_days: float = 0.0,
    ) -> None:
        self.store = store
        self.default_days = default_days
        self.interval_s = interval_s
        self.batch = batch
        self.pause_s = pause_s
        self.jobs = jobs
        self.job_days = job_days
        self._poller = Periodic(interval_s, self._pass, log, "retention")
        self.deleted = 0

    def start(self, supervisor: Supervisor | None = None) -> None:
        self._poller.start(supervisor)

    async def stop(self) -> None:
        await self._poller.stop()

    async def _pass(self) -> None:
        await self.run_once()
        await self.prune_jobs()

    async def prune_jobs(self) -> int:
        """Delete finished jobs older than ``job_days`` (never dead ones)."""
        if self.jobs is None or self.job_days <= 0:
            return 0
        deleted, before = 0, time.time() - self.job_days * DAY
        while True:
            count = await self.jobs.prune_jobs(before, self.batch)
            deleted += count
            if count < self.batch:
                break
            await asyncio.sleep(self.pause_s)
        if deleted:
            log.info("retention deleted %d finished jobs", deleted)
        return deleted

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
