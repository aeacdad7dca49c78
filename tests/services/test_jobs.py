"""The jobs service with small fakes of its ports (the store's job queue,
the worker's wake-up): what a use case writes, whom it refuses first, and
which follow-up signal it sends."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pytest

from tidings.errors import Forbidden, InvalidInput, NotFound
from tidings.services.auth import Principal
from tidings.services.jobs import Jobs, Processing, parse_statuses
from tidings.store.base import JobFilter, JobRecord

OPERATOR = Principal(kind="admin", scopes=frozenset({"admin", "publish"}))
TENANT_ADMIN = Principal(kind="key", tenant_id="t1", scopes=frozenset({"admin"}), key_id="k1")
PUBLISHER = Principal(kind="key", tenant_id="t1", scopes=frozenset({"publish"}), key_id="k2")


def job(job_id: int, tenant_id: str = "t1", status: str = "dead") -> JobRecord:
    return JobRecord(
        id=job_id,
        tenant_id=tenant_id,
        rule_id="rul_1",
        event_position=1,
        event_id="evt_1",
        event_type="course.completed",
        status=status,
        attempts=3,
        run_at=0.0,
        lease_until=None,
        worker=None,
        last_error="boom",
        discard_reason=None,
        created_at=0.0,
        updated_at=0.0,
    )


class FakeJobQueue:
    """The store's job-queue role, in memory; records every write."""

    def __init__(self, *jobs: JobRecord) -> None:
        self.jobs = {j.id: j for j in jobs}
        self.writes: list[tuple[str, Any]] = []
        self.queries: list[JobFilter] = []

    def _in(self, ids: Sequence[int], tenant_ids: Sequence[str] | None) -> list[JobRecord]:
        return [
            self.jobs[i]
            for i in ids
            if i in self.jobs and (tenant_ids is None or self.jobs[i].tenant_id in tenant_ids)
        ]

    async def get_job(self, job_id: int) -> JobRecord | None:
        return self.jobs.get(job_id)

    async def list_jobs(self, query: JobFilter, *, history: bool = False) -> list[JobRecord]:
        self.queries.append(query)
        return list(self.jobs.values())

    async def retry_jobs(
        self, ids: Sequence[int], now: float, tenant_ids: Sequence[str] | None = None
    ) -> int:
        found = [j for j in self._in(ids, tenant_ids) if j.status not in ("pending", "running")]
        for j in found:
            self.jobs[j.id] = replace(j, status="pending", attempts=0)
        self.writes.append(("retry", [j.id for j in found]))
        return len(found)

    async def discard_jobs(
        self,
        ids: Sequence[int],
        reason: str,
        now: float,
        tenant_ids: Sequence[str] | None = None,
    ) -> int:
        found = self._in(ids, tenant_ids)
        for j in found:
            self.jobs[j.id] = replace(j, status="discarded", discard_reason=reason)
        self.writes.append(("discard", [j.id for j in found]))
        return len(found)

    async def count_jobs(self, query: JobFilter) -> dict[str, int]:
        self.queries.append(query)
        counts: dict[str, int] = {}
        for j in self.jobs.values():
            counts[j.status] = counts.get(j.status, 0) + 1
        return counts

    async def queued_for(self, event_id: str, tenant_ids: Sequence[str] | None) -> int:
        return 1


class FakeStore:
    def __init__(self, *jobs: JobRecord) -> None:
        self.jobs = FakeJobQueue(*jobs)


class FakeRuleBook:
    rules: dict[str, Any] = {}

    async def load(self) -> None:
        raise AssertionError("a refused replay must not load rules")


def service(*jobs: JobRecord) -> tuple[Jobs, FakeStore, list[str]]:
    store = FakeStore(*jobs)
    woken: list[str] = []

    async def admit(tenant_id: str, *, field: str = "/tenantId") -> Any:
        raise AssertionError("not reached")

    jobs_service = Jobs(
        store,  # type: ignore[arg-type]
        FakeRuleBook(),  # type: ignore[arg-type]
        admit=admit,
        wake_worker=lambda: woken.append("wake"),
        clock=lambda: 1000.0,
    )
    return jobs_service, store, woken


async def test_a_retry_requeues_the_job_and_wakes_the_worker() -> None:
    jobs, store, woken = service(job(1))
    retried = await jobs.retry(TENANT_ADMIN, 1)
    assert retried.status == "pending"
    assert store.jobs.writes == [("retry", [1])]
    assert woken == ["wake"]


async def test_a_retry_that_queued_nothing_does_not_wake_the_worker() -> None:
    jobs, _, woken = service(job(1, status="running"))
    assert await jobs.retry_many(OPERATOR, [1, 2]) == 0
    assert woken == []


async def test_a_pending_job_is_not_retried() -> None:
    jobs, store, woken = service(job(1, status="pending"))
    with pytest.raises(InvalidInput, match="nothing to retry"):
        await jobs.retry(OPERATOR, 1)
    assert store.jobs.writes == [] and woken == []


async def test_unauthorized_callers_are_refused_before_any_write() -> None:
    jobs, store, woken = service(job(1))
    with pytest.raises(Forbidden):
        await jobs.retry(PUBLISHER, 1)
    with pytest.raises(Forbidden):
        await jobs.retry_many(PUBLISHER, [1])
    with pytest.raises(Forbidden):
        await jobs.discard_many(PUBLISHER, [1], "why")
    with pytest.raises(Forbidden):
        await jobs.replay(TENANT_ADMIN, since=0, until=1, tenant_id="t2")
    assert store.jobs.writes == [] and woken == []


async def test_another_tenants_job_is_not_found_and_unchanged() -> None:
    jobs, store, _ = service(job(1, tenant_id="t2"))
    with pytest.raises(NotFound):
        await jobs.discard(TENANT_ADMIN, 1, "not mine")
    with pytest.raises(NotFound):
        await jobs.retry(TENANT_ADMIN, 1)
    assert store.jobs.writes == []
    assert await jobs.retry_many(TENANT_ADMIN, [1]) == 0  # scoped to t1: nothing
    assert store.jobs.jobs[1].status == "dead"


async def test_listing_is_scoped_to_the_callers_tenant() -> None:
    jobs, store, _ = service(job(1))
    await jobs.list_jobs(TENANT_ADMIN, JobFilter(limit=5))
    await jobs.list_jobs(OPERATOR, JobFilter(limit=5), tenant_id="t9")
    await jobs.list_jobs(OPERATOR, JobFilter(limit=5))
    assert [q.tenant_ids for q in store.jobs.queries] == [["t1"], ["t9"], None]
    with pytest.raises(Forbidden):
        await jobs.list_jobs(TENANT_ADMIN, JobFilter(), tenant_id="t2")


async def test_a_discard_needs_a_reason() -> None:
    jobs, store, _ = service(job(1))
    with pytest.raises(InvalidInput, match="reason"):
        await jobs.discard_many(OPERATOR, [1], None)
    assert store.jobs.writes == []
    assert await jobs.discard_many(OPERATOR, [1], "obsolete") == 1


async def test_an_empty_replay_range_is_refused_before_anything_runs() -> None:
    jobs, _, woken = service()
    with pytest.raises(InvalidInput, match="empty"):
        await jobs.replay(OPERATOR, since=10, until=10)
    assert woken == []


async def test_processing_counts_jobs_still_in_the_outbox_as_pending() -> None:
    jobs, _, _ = service(job(1, status="succeeded"))
    state = await jobs.processing(OPERATOR, "evt_1")
    assert state.jobs == {"succeeded": 1, "pending": 1}
    assert (state.state, state.processed) == ("pending", False)


@pytest.mark.parametrize(
    ("counts", "state", "processed"),
    [
        ({}, "no_jobs", True),
        ({"succeeded": 2, "discarded": 1}, "processed", True),
        ({"succeeded": 1, "dead": 1}, "failed", False),
        ({"dead": 1, "failed": 1}, "pending", False),
    ],
)
def test_processing_state(counts: dict[str, int], state: str, processed: bool) -> None:
    assert (Processing(counts).state, Processing(counts).processed) == (state, processed)


def test_statuses_are_checked() -> None:
    assert parse_statuses("failed, dead") == ("failed", "dead")
    assert parse_statuses(None) == ()
    with pytest.raises(InvalidInput, match="unknown status 'lost'"):
        parse_statuses("failed,lost")
