"""The outbox and the job store on SQLite and a real PostgreSQL: jobs
commit with their events or not at all, one per (event, rule), claims are
exclusive, stale results are ignored, dead jobs survive retention."""

from __future__ import annotations

import time

import pytest

from test_store import new
from tidings.core.conditions import compile_conditions
from tidings.core.triggers import RuleSet, RuleTrigger
from tidings.errors import Conflict
from tidings.store.base import AttemptRecord, JobFilter, JobResult, LifecycleChange
from tidings.store.ports import Store

pytestmark = pytest.mark.asyncio


def trigger(
    rule_id: str, pattern: str = "qms.*", tenant: str | None = None, **cond: object
) -> RuleTrigger:
    conditions = compile_conditions(cond or None)
    return RuleTrigger(rule_id, tenant, 0, pattern, conditions)


def result(
    job_id: int, worker: str, attempt: int, status: str, run_at: float | None = None
) -> JobResult:
    record = AttemptRecord(
        attempt, time.time(), 1.0, "succeeded" if status == "succeeded" else "failed", 200, "x"
    )
    return JobResult(job_id, worker, record, status, run_at=run_at)


async def test_jobs_are_enqueued_with_their_events_once(store: Store) -> None:
    store.jobs.use_rules(
        RuleSet(
            [
                trigger("r1"),
                trigger("r2", tenant="t2"),
                trigger("r3", path="data.x", op="eq", value=2),
            ]
        )
    )
    first = new("t1", id="e1")
    outcome = await store.append_events([first, new("t2"), new("t1", "other.type")])
    assert outcome.jobs == 3  # r1 for both qms events, r2 for t2's; r3's condition fails
    again = await store.append_events([new("t1", id="e1")])  # a duplicate: no new jobs
    assert again.jobs == 0 and again.results[0].duplicate
    assert await store.jobs.materialize(time.time()) == 2  # two events with rules
    assert await store.jobs.materialize(time.time()) == 0  # taken once
    listed = await store.jobs.list_jobs(JobFilter())
    assert sorted((j.tenant_id, j.rule_id, j.status) for j in listed) == [
        ("t1", "r1", "pending"),
        ("t2", "r1", "pending"),
        ("t2", "r2", "pending"),
    ]


async def test_a_failed_append_leaves_no_job(store: Store) -> None:
    store.jobs.use_rules(RuleSet([trigger("r1")]))
    event = new("t1", id="e-lifecycle")
    change = LifecycleChange("ACTIVE", None, None, "user")
    await store.put_tenant("t1", "T", {})
    with pytest.raises(Conflict):  # the compare-and-set fails: the whole transaction goes
        await store.transition_tenant("t1", "SUSPENDED", change, event)
    assert await store.jobs.materialize(time.time()) == 0
    assert await store.jobs.list_jobs(JobFilter()) == []
    assert await store.read_events(0, 10) == []


async def test_claims_are_exclusive_and_stale_results_ignored(store: Store) -> None:
    store.jobs.use_rules(RuleSet([trigger("r1")]))
    await store.append_events([new("t1") for _ in range(5)])
    now = time.time()
    a = await store.jobs.claim("A", 3, 60, now)
    b = await store.jobs.claim("B", 10, 60, now)
    assert len(a) == 3 and len(b) == 2
    assert {j.id for j, _ in a}.isdisjoint({j.id for j, _ in b})
    assert all(body is not None for _, body in a + b)
    assert await store.jobs.claim("C", 10, 60, now) == []

    job = a[0][0]
    # B pretending to finish A's job, or A with a wrong attempt number: ignored.
    assert await store.jobs.finish([result(job.id, "B", 1, "succeeded")]) == 0
    assert await store.jobs.finish([result(job.id, "A", 2, "succeeded")]) == 0
    assert await store.jobs.finish([result(job.id, "A", 1, "failed", run_at=now - 1)]) == 1
    retried = await store.jobs.claim("C", 10, 60, now)
    assert [(j.id, j.attempts) for j, _ in retried] == [(job.id, 2)]
    stored = await store.jobs.get_job(job.id)
    assert stored is not None and [a.attempt for a in stored.history] == [1]


async def test_expired_leases_are_found(store: Store) -> None:
    store.jobs.use_rules(RuleSet([trigger("r1")]))
    await store.append_events([new("t1")])
    now = time.time()
    ((claimed, _),) = await store.jobs.claim("A", 1, 0.01, now)
    assert [j.id for j in await store.jobs.expired(now + 1)] == [claimed.id]
    assert await store.jobs.expired(now) == []


async def test_retention_keeps_dead_jobs_and_their_events(store: Store) -> None:
    old = time.time() - 10_000
    store.jobs.use_rules(RuleSet([trigger("r1")]))
    await store.append_events([new("t1", created=old) for _ in range(3)])
    claimed = await store.jobs.claim("A", 3, 60, time.time())
    (dead, _), (done, _), (gone, _) = claimed
    await store.jobs.finish(
        [
            result(dead.id, "A", 1, "dead"),
            result(done.id, "A", 1, "succeeded"),
            result(gone.id, "A", 1, "succeeded"),
        ]
    )
    await store.jobs.discard_jobs([dead.id], "keep me?", time.time())
    await store.jobs.retry_jobs([dead.id], time.time())
    claimed_again = await store.jobs.claim("A", 1, 60, time.time())
    await store.jobs.finish([result(claimed_again[0][0].id, "A", 1, "dead")])

    pruned = await store.prune_events("t1", time.time())
    assert pruned == 2  # the dead job's event stays
    assert [e.position for e in await store.read_events(0, 10)] == [dead.event_position]
    assert await store.jobs.prune_jobs(time.time() + 1) == 2  # only the succeeded ones
    left = await store.jobs.list_jobs(JobFilter())
    assert [(j.id, j.status) for j in left] == [(dead.id, "dead")]
