"""Jobs and dead letters (DESIGN §4), and replay (seed 001): the use cases
behind ``/api/admin/jobs``, ``/api/admin/replay`` and ``tidings jobs`` /
``tidings replay``.

Authorization (:mod:`tidings.services.access`): ``jobs.list`` to list and
count, ``jobs.write`` to read one job, retry and discard, ``replay`` to
replay; admin credentials only. A tenant-bound credential reaches its
tenant's jobs only: a job of another tenant answers 404 (its existence is
not revealed), naming another tenant 403. Every refusal comes before any
read or write.

Follow-up signal: whatever queues jobs again (a retry, a replay that
queued some) wakes this process's worker before returning, so a due job
does not wait for the next poll.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from tidings.automation.replay import ReplayReport, choose_rules
from tidings.automation.replay import replay as replay_range
from tidings.core.envelope import iso_utc
from tidings.errors import InvalidInput, NotFound
from tidings.services.access import authorize, in_scope
from tidings.services.auth import Principal
from tidings.services.ports import AdmitGate, WakeWorker
from tidings.store.base import JobFilter, JobRecord

if TYPE_CHECKING:
    from tidings.automation.rulebook import RuleBook
    from tidings.store.ports import Store  # its EventLog and JobQueue (store.jobs) roles

JOB_STATES = ("pending", "running", "failed", "succeeded", "dead", "discarded")
RETRYABLE = frozenset({"failed", "succeeded", "dead", "discarded"})  # not pending, not running
DISCARDABLE = frozenset({"pending", "failed", "dead"})
ATTENTION = ("failed", "dead")  # what an operator looks at first, and bulk-retries
RETRY_PAGE = 500
RETRY_MATCHING_MAX = 10_000  # one bulk retry touches at most this many jobs


def parse_statuses(value: str | None) -> tuple[str, ...]:
    """``"failed,dead"`` as a tuple of job states; 422 on an unknown one."""
    if not value:
        return ()
    wanted = tuple(s.strip() for s in value.split(",") if s.strip())
    for status in wanted:
        if status not in JOB_STATES:
            raise InvalidInput(
                f"unknown status {status!r} (one of {', '.join(JOB_STATES)})", field="status"
            )
    return wanted


@dataclass(frozen=True, slots=True)
class Processing:
    """Seed 001's ``processed`` flag, derived from an event's jobs: done when
    every job succeeded or was discarded; failed when one is dead."""

    jobs: dict[str, int]  # job count by status (jobs still in the outbox: pending)

    @property
    def state(self) -> str:
        if not self.jobs:
            return "no_jobs"
        if sum(self.jobs.get(s, 0) for s in ("pending", "running", "failed")):
            return "pending"
        return "failed" if self.jobs.get("dead") else "processed"

    @property
    def processed(self) -> bool:
        return self.state in ("processed", "no_jobs")


class Jobs:
    """Uses the store's ``JobQueue`` role (and ``EventLog`` for replay), the
    rule book for the rules a replay runs, ``admit`` (a replay of a tenant
    that accepts no writes queues nothing) and ``wake_worker``."""

    def __init__(
        self,
        store: Store,
        rulebook: RuleBook,
        *,
        admit: AdmitGate,
        wake_worker: WakeWorker,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.rulebook = rulebook
        self._admit = admit
        self._wake_worker = wake_worker
        self._clock = clock

    # -- reading ------------------------------------------------------------

    async def list_jobs(
        self,
        principal: Principal,
        query: JobFilter,
        *,
        tenant_id: str | None = None,
        history: bool = False,
    ) -> list[JobRecord]:
        """Jobs matching ``query`` within the caller's reach (narrowed to
        ``tenant_id``), newest first; with ``history``, every attempt."""
        authorize(principal, "jobs.list", scoped=False)
        scoped = replace(query, tenant_ids=self._scope(principal, tenant_id))
        return await self.store.jobs.list_jobs(scoped, history=history)

    async def count(
        self, principal: Principal, query: JobFilter, *, tenant_id: str | None = None
    ) -> dict[str, int]:
        """How many jobs match ``query`` within the caller's reach, by status
        (``query.limit`` and ``before_id`` are ignored)."""
        authorize(principal, "jobs.list", scoped=False)
        scoped = replace(query, tenant_ids=self._scope(principal, tenant_id), before_id=None)
        return await self.store.jobs.count_jobs(scoped)

    async def get(self, principal: Principal, job_id: int) -> JobRecord:
        """One job with every attempt; 404 when missing or out of reach."""
        authorize(principal, "jobs.write", scoped=False)
        job = await self.store.jobs.get_job(job_id)
        if job is None or not in_scope(principal, job.tenant_id):
            raise NotFound(f"no job {job_id}")
        return job

    async def processing(
        self, principal: Principal, event_id: str, *, tenant_id: str | None = None
    ) -> Processing:
        """The processed state of event ``event_id`` from its jobs."""
        authorize(principal, "jobs.list", scoped=False)
        scope = self._scope(principal, tenant_id)
        counts = await self.store.jobs.count_jobs(JobFilter(tenant_ids=scope, event_id=event_id))
        queued = await self.store.jobs.queued_for(event_id, scope)
        if queued:
            counts["pending"] = counts.get("pending", 0) + queued
        return Processing(counts)

    # -- changes ------------------------------------------------------------

    async def retry(self, principal: Principal, job_id: int) -> JobRecord:
        """Run a failed, dead or finished job again now (422 for a pending or
        running one); the job as it is afterwards."""
        job = await self.get(principal, job_id)
        if job.status not in RETRYABLE:
            raise InvalidInput(f"job {job.id} is {job.status}: nothing to retry", field="status")
        await self._retry(principal, [job.id])
        return await self._reload(job.id)

    async def retry_many(self, principal: Principal, ids: Sequence[int]) -> int:
        """Retry those of ``ids`` in reach that can be; how many were."""
        authorize(principal, "jobs.write", scoped=False)
        return await self._retry(principal, ids)

    async def retry_matching(
        self, principal: Principal, query: JobFilter, *, tenant_id: str | None = None
    ) -> int:
        """Retry the jobs matching ``query`` (its statuses, else the failed and
        dead ones; pending and running jobs never) within the caller's reach,
        newest first and at most :data:`RETRY_MATCHING_MAX`; how many were."""
        authorize(principal, "jobs.write", scoped=False)
        statuses = tuple(s for s in (query.statuses or ATTENTION) if s in RETRYABLE)
        if not statuses:
            return 0
        scoped = replace(
            query,
            statuses=statuses,
            tenant_ids=self._scope(principal, tenant_id),
            limit=RETRY_PAGE,
        )
        ids: list[int] = []
        while len(ids) < RETRY_MATCHING_MAX:
            page = await self.store.jobs.list_jobs(scoped)
            ids.extend(job.id for job in page)
            if len(page) < RETRY_PAGE:
                break
            scoped = replace(scoped, before_id=page[-1].id)
        return await self._retry(principal, ids[:RETRY_MATCHING_MAX]) if ids else 0

    async def discard(self, principal: Principal, job_id: int, reason: str) -> JobRecord:
        """Give up on a pending, failed or dead job, with a reason."""
        job = await self.get(principal, job_id)
        if job.status not in DISCARDABLE:
            raise InvalidInput(
                f"job {job.id} is {job.status}: it cannot be discarded", field="status"
            )
        await self.store.jobs.discard_jobs(
            [job.id], reason, self._clock(), tenant_ids=self._scope(principal, None)
        )
        return await self._reload(job.id)

    async def discard_many(
        self, principal: Principal, ids: Sequence[int], reason: str | None
    ) -> int:
        """Discard those of ``ids`` in reach that can be; how many were."""
        authorize(principal, "jobs.write", scoped=False)
        if not reason:
            raise InvalidInput("a reason is required", field="/reason")
        return await self.store.jobs.discard_jobs(
            ids, reason, self._clock(), tenant_ids=self._scope(principal, None)
        )

    async def replay(
        self,
        principal: Principal,
        *,
        since: float,
        until: float,
        tenant_id: str | None = None,
        rule_id: str | None = None,
        dry_run: bool = False,
        force: bool = False,
        progress: Callable[[int, int], None] | None = None,
    ) -> ReplayReport:
        """Run ``[since, until)`` through today's enabled rules again (see
        :mod:`tidings.automation.replay`); ``tenant_id`` None replays every
        tenant (a global target). A tenant-bound caller replays its own
        rules only, never the platform's."""
        authorize(principal, "replay", tenant_id, field="/tenantId")
        if until <= since:
            raise InvalidInput("the range is empty: --to must be after --from", field="to")
        if tenant_id is not None and not dry_run:
            await self._admit(tenant_id, field="tenantId")  # jobs of other tenants are held
        await self.rulebook.load()
        own_only = principal.tenant_id is not None
        rules = choose_rules(self.rulebook.rules, tenant_id, rule_id, own_only)
        report = await replay_range(
            self.store,
            rules,
            since=since,
            until=until,
            tenant_id=tenant_id,
            dry_run=dry_run,
            force=force,
            progress=progress,
        )
        if not dry_run and report.queued:
            self._wake_worker()
        return report

    # -- helpers ------------------------------------------------------------

    def _scope(self, principal: Principal, tenant_id: str | None) -> list[str] | None:
        """The tenants a job query covers: the caller's, narrowed by ``tenant_id``."""
        if tenant_id is not None:
            authorize(principal, "jobs.list", tenant_id, field="tenantId")
        if principal.tenant_id is not None:
            return [principal.tenant_id]
        return [tenant_id] if tenant_id else None

    async def _retry(self, principal: Principal, ids: Sequence[int]) -> int:
        count = await self.store.jobs.retry_jobs(
            ids, self._clock(), tenant_ids=self._scope(principal, None)
        )
        if count:
            self._wake_worker()
        return count

    async def _reload(self, job_id: int) -> JobRecord:
        job = await self.store.jobs.get_job(job_id)
        if job is None:  # deleted between the write and the read: retention ran
            raise NotFound(f"no job {job_id}")
        return job


def processing_json(event_id: str, processing: Processing) -> dict[str, Any]:
    return {
        "eventId": event_id,
        "processed": processing.processed,
        "state": processing.state,
        "jobs": processing.jobs,
    }


def job_json(job: JobRecord) -> dict[str, Any]:
    """A job as the API and the CLI show it (``attempts``: its loaded history)."""
    body: dict[str, Any] = {
        "id": job.id,
        "status": job.status,
        "tenantId": job.tenant_id,
        "ruleId": job.rule_id,
        "eventId": job.event_id,
        "eventPosition": job.event_position,
        "eventType": job.event_type,
        "attemptCount": job.attempts,
        "nextRunAt": iso_utc(job.run_at) if job.status in ("pending", "failed") else None,
        "lastError": job.last_error,
        "discardReason": job.discard_reason,
        "requestId": job.request_id,
        "createdAt": iso_utc(job.created_at),
        "updatedAt": iso_utc(job.updated_at),
        "attempts": [
            {
                "attempt": a.attempt,
                "time": iso_utc(a.started_at),
                "durationMs": a.duration_ms,
                "outcome": a.outcome,
                "status": a.status_code,
                "detail": a.detail,
                "worker": a.worker,
            }
            for a in job.history
        ],
    }
    return body
