"""Rules and jobs in SQL (SQLite and PostgreSQL): the automation half of
the store.

The append transaction writes one *outbox* row per event that matched
rules (``store/append.py``); everything after that lives here: workers
turn outbox rows into jobs (one per rule, idempotent per (event, rule)),
claim due jobs under a lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL;
on SQLite the database write lock, and its dialect leaves ``FOR UPDATE``
out), record each attempt, and either finish them or schedule the next
attempt. Every update of a claimed job checks the claim it came from
(worker and attempt number), so a worker that lost its lease can never
overwrite the job's newer state.

Endpoint health: a webhook rule's current run of failed deliveries is kept
in its stored spec (``spec["health"]``: ``{"failures", "since"}``), changed
only under the rule row's lock (``FOR UPDATE`` on PostgreSQL, the write
lock on SQLite) and without touching ``updated_at`` (so it never looks like
an edit). A success ends the run; re-enabling or editing the endpoint
starts a new one (the rule book saves a spec without it). A rule is
disabled once, by a conditional update: of two processes racing to
disable it, one wins and announces it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import Float, bindparam, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from tidings.core.triggers import RuleSet
from tidings.store.records import (
    AttemptRecord,
    Delivery,
    FailingRule,
    JobFilter,
    JobRecord,
    JobResult,
    JobRow,
    RuleRecord,
)
from tidings.store.schema import events, job_attempts, jobs, outbox, rules

if TYPE_CHECKING:
    from tidings.store.sql.common import Backend

__all__ = ["HEALTH_KEY", "Delivery", "FailingRule", "SQLJobs", "next_health"]

CLAIMABLE = ("pending", "failed")  # failed: an attempt failed, the next is scheduled
RETRYABLE = ("failed", "dead", "succeeded", "discarded")
HEALTH_KEY = "health"  # in a rule's spec: its endpoint's current run of failures


def next_health(
    health: Mapping[str, Any] | None, deliveries: Sequence[Delivery]
) -> dict[str, Any] | None:
    """A rule's run of failures after ``deliveries`` (in attempt order):
    a success ends it (None), a failure extends it."""
    current = dict(health) if health else None
    for delivery in deliveries:
        if delivery.ok:
            current = None
        elif current is None:
            current = {"failures": 1, "since": delivery.at}
        else:
            current = {"failures": int(current["failures"]) + 1, "since": current["since"]}
    return current


class SQLJobs:
    """:class:`~tidings.store.ports.JobQueue` on a SQL backend."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._rules: RuleSet | None = None

    @property
    def rules(self) -> RuleSet | None:
        """The rules in force: appends enqueue the jobs they match."""
        return self._rules

    def use_rules(self, rules: RuleSet | None) -> None:
        """Put ``rules`` in force for every append from now on."""
        self._rules = rules

    # -- rules ------------------------------------------------------------

    async def put_rule(self, record: RuleRecord) -> None:
        values = {
            "tenant_id": record.tenant_id,
            "name": record.name,
            "spec": orjson.dumps(record.spec).decode(),
            "priority": record.priority,
            "enabled": record.enabled,
            "disabled_reason": record.disabled_reason,
            "author": record.author,
            "updated_at": record.updated_at,
            "deleted_at": record.deleted_at,
        }
        async with self.backend.write() as conn:
            found = await conn.execute(update(rules).where(rules.c.id == record.id).values(values))
            if found.rowcount == 0:
                await conn.execute(
                    insert(rules).values(id=record.id, created_at=record.created_at, **values)
                )

    async def get_rule(self, rule_id: str) -> RuleRecord | None:
        async with self.backend.read() as conn:
            row = (await conn.execute(select(rules).where(rules.c.id == rule_id))).first()
        return _rule(row) if row is not None else None

    async def list_rules(self, *, include_deleted: bool = False) -> list[RuleRecord]:
        stmt = select(rules).order_by(rules.c.priority.desc(), rules.c.id)
        if not include_deleted:
            stmt = stmt.where(rules.c.deleted_at.is_(None))
        async with self.backend.read() as conn:
            return [_rule(row) for row in await conn.execute(stmt)]

    async def record_deliveries(
        self, deliveries: Sequence[Delivery], *, failures: int, window_s: float
    ) -> list[FailingRule]:
        """Fold these attempts into their rules' runs of failures; returns
        the enabled rules whose run now holds at least ``failures`` attempts
        spanning at least ``window_s`` (``failures`` 0: never). Reads only,
        unless some run changes."""
        by_rule: dict[str, list[Delivery]] = {}
        for delivery in sorted(deliveries, key=lambda d: d.at):
            by_rule.setdefault(delivery.rule_id, []).append(delivery)
        if not by_rule:
            return []
        stmt = select(rules.c.id, rules.c.spec).where(rules.c.id.in_(list(by_rule)))
        async with self.backend.read() as conn:
            stored = {i: orjson.loads(spec) for i, spec in await conn.execute(stmt)}
        if all(
            next_health(spec.get(HEALTH_KEY), by_rule[i]) == spec.get(HEALTH_KEY)
            for i, spec in stored.items()
        ):
            return []  # the common case: successes of healthy rules
        stmt = stmt.with_for_update()
        found: list[FailingRule] = []
        async with self.backend.write() as conn:
            current = {i: orjson.loads(spec) for i, spec in await conn.execute(stmt)}
            changed = []
            for rule_id, spec in current.items():
                health = next_health(spec.get(HEALTH_KEY), by_rule[rule_id])
                if health == spec.get(HEALTH_KEY):
                    continue
                spec.pop(HEALTH_KEY, None)
                if health is not None:
                    spec[HEALTH_KEY] = health
                changed.append({"rule": rule_id, "new_spec": orjson.dumps(spec).decode()})
                last = by_rule[rule_id][-1]
                if (
                    health is not None
                    and failures > 0
                    and health["failures"] >= failures
                    and last.at - float(health["since"]) >= window_s
                ):
                    found.append(
                        FailingRule(rule_id, health["failures"], health["since"], last.detail)
                    )
            if changed:
                await conn.execute(
                    update(rules)
                    .where(rules.c.id == bindparam("rule"))
                    .values(spec=bindparam("new_spec")),
                    changed,
                )
        return found

    async def disable_rule(self, rule_id: str, reason: str, now: float) -> RuleRecord | None:
        """Disable an enabled rule; the disabled record, or None when it was
        not enabled (already disabled, deleted, or another process won)."""
        stmt = (
            update(rules)
            .where(rules.c.id == rule_id, rules.c.enabled.is_(True), rules.c.deleted_at.is_(None))
            .values(enabled=False, disabled_reason=reason, updated_at=now)
        )
        async with self.backend.write() as conn:
            if (await conn.execute(stmt)).rowcount != 1:
                return None
            row = (await conn.execute(select(rules).where(rules.c.id == rule_id))).one()
        return _rule(row)

    async def rules_version(self) -> tuple[int, float]:
        """Changes whenever any rule is created, changed or deleted."""
        stmt = select(func.count(), func.coalesce(func.max(rules.c.updated_at), 0.0))
        async with self.backend.read() as conn:
            count, latest = (await conn.execute(stmt)).one()
        return int(count), float(latest)

    # -- claiming and finishing -------------------------------------------

    async def materialize(
        self, now: float, delays: Mapping[str, float] | None = None, limit: int = 2000
    ) -> int:
        """Turn outbox rows into jobs (``delays``: each rule's delay before
        its first attempt). Returns how many outbox rows were taken."""
        async with self.backend.write() as conn:
            return await self._materialize(conn, now, delays or {}, limit)

    async def _materialize(
        self, conn: AsyncConnection, now: float, delays: Mapping[str, float], limit: int
    ) -> int:
        stmt = (
            select(outbox)
            .order_by(outbox.c.event_position)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        rows = (await conn.execute(stmt)).all()
        if not rows:
            return 0
        values = [
            JobRow(
                row.tenant_id,
                rule_id,
                row.event_position,
                row.event_id,
                row.event_type,
                "pending",
                0,
                row.created_at + delays.get(rule_id, 0.0),
                row.created_at,
                now,
                row.request_id,
            )._asdict()
            for row in rows
            for rule_id in row.rule_ids.split()
        ]
        await conn.execute(self.backend.insert_new(jobs), values)
        taken = [row.event_position for row in rows]
        await conn.execute(delete(outbox).where(outbox.c.event_position.in_(taken)))
        return len(rows)

    async def claim(
        self,
        worker: str,
        limit: int,
        lease_s: float,
        now: float,
        delays: Mapping[str, float] | None = None,
    ) -> list[tuple[JobRecord, str | None]]:
        """Take up to ``limit`` due jobs for ``worker`` until ``now + lease_s``
        (after turning the outbox into jobs); each comes with its event's
        stored body (None if it was pruned)."""
        async with self.backend.write() as conn:
            await self._materialize(conn, now, delays or {}, 2000)
            ids: list[int] = []
            for status in CLAIMABLE:  # one index range each: (status, run_at)
                if len(ids) >= limit:
                    break
                due = (
                    select(jobs.c.id)
                    .where(jobs.c.status == status, jobs.c.run_at <= now)
                    .order_by(jobs.c.run_at)
                    .limit(limit - len(ids))
                    .with_for_update(skip_locked=True)
                )
                ids += [i for (i,) in await conn.execute(due)]
            if not ids:
                return []
            taken = (
                update(jobs)
                .where(jobs.c.id.in_(ids))
                .values(
                    status="running",
                    worker=worker,
                    lease_until=now + lease_s,
                    attempts=jobs.c.attempts + 1,
                    updated_at=now,
                )
                .returning(*jobs.c)
            )
            claimed = [_job(r) for r in await conn.execute(taken)]
            positions = list({j.event_position for j in claimed})
            bodies = dict(
                (
                    await conn.execute(
                        select(events.c.position, events.c.body).where(
                            events.c.position.in_(positions)
                        )
                    )
                ).all()
            )
        claimed.sort(key=lambda j: (j.run_at, j.id))
        return [(j, bodies.get(j.event_position)) for j in claimed]

    async def expired(self, now: float, limit: int = 100) -> list[JobRecord]:
        """Claimed jobs whose worker's lease ran out (the worker died or hung)."""
        stmt = (
            select(jobs)
            .where(jobs.c.status == "running", jobs.c.lease_until < now)
            .order_by(jobs.c.lease_until)
            .limit(limit)
        )
        async with self.backend.read() as conn:
            return [_job(r) for r in await conn.execute(stmt)]

    async def finish(self, results: Sequence[JobResult]) -> int:
        """Record attempts and move their jobs on, in one transaction. A
        result whose claim is stale (reclaimed meanwhile) changes nothing.
        Returns how many applied."""
        if not results:
            return 0
        async with self.backend.write() as conn:
            current = (
                select(jobs.c.id, jobs.c.worker, jobs.c.attempts)
                .where(jobs.c.id.in_([r.job_id for r in results]), jobs.c.status == "running")
                .with_for_update()
            )
            claims = {i: (w, a) for i, w, a in await conn.execute(current)}
            valid = []
            for r in results:  # one result per claim (a reaper may report one twice)
                if claims.pop(r.job_id, None) == (r.worker, r.attempt.attempt):
                    valid.append(r)
            if valid:
                await conn.execute(_FINISH, [_finish_params(r) for r in valid])
                await conn.execute(insert(job_attempts), [_attempt_row(r) for r in valid])
        return len(valid)

    # -- operators --------------------------------------------------------

    async def list_jobs(self, query: JobFilter, *, history: bool = False) -> list[JobRecord]:
        """Jobs newest first; with ``history``, each with its attempts."""
        stmt = select(jobs).where(*_job_conditions(query)).order_by(jobs.c.id.desc())
        async with self.backend.read() as conn:
            found = [_job(r) for r in await conn.execute(stmt.limit(query.limit))]
            if not history or not found:
                return found
            attempts: dict[int, list[AttemptRecord]] = {}
            rows = await conn.execute(
                select(job_attempts)
                .where(job_attempts.c.job_id.in_([j.id for j in found]))
                .order_by(job_attempts.c.id)
            )
            for row in rows:
                attempts.setdefault(int(row.job_id), []).append(_attempt(row))
        return [_with_history(j, attempts.get(j.id, [])) for j in found]

    async def count_jobs(self, query: JobFilter) -> dict[str, int]:
        stmt = (
            select(jobs.c.status, func.count())
            .where(*_job_conditions(query))
            .group_by(jobs.c.status)
        )
        async with self.backend.read() as conn:
            return {status: int(n) for status, n in await conn.execute(stmt)}

    async def backlog(
        self, now: float, tenant_ids: Sequence[str] | None
    ) -> tuple[int, float | None]:
        """The work not yet done beyond the jobs table's counts: how many
        appended events wait in the outbox to become jobs, and since when
        the longest-waiting work has been due (a claimable job's ``run_at``
        or an outbox row's ``created_at``; None: nothing is due). Two small
        aggregates: ``ix_jobs_due`` for the jobs; the outbox is short while
        a worker runs."""
        due = select(func.min(jobs.c.run_at)).where(
            jobs.c.status.in_(CLAIMABLE), jobs.c.run_at <= now
        )
        waiting = select(func.count(), func.min(outbox.c.created_at))
        if tenant_ids is not None:
            due = due.where(jobs.c.tenant_id.in_(list(tenant_ids)))
            waiting = waiting.where(outbox.c.tenant_id.in_(list(tenant_ids)))
        async with self.backend.read() as conn:
            oldest_job = (await conn.execute(due)).scalar_one()
            count, oldest_event = (await conn.execute(waiting)).one()
        times = [float(t) for t in (oldest_job, oldest_event) if t is not None]
        return int(count), min(times) if times else None

    async def get_job(self, job_id: int) -> JobRecord | None:
        async with self.backend.read() as conn:
            row = (await conn.execute(select(jobs).where(jobs.c.id == job_id))).first()
            if row is None:
                return None
            history = await conn.execute(
                select(job_attempts)
                .where(job_attempts.c.job_id == job_id)
                .order_by(job_attempts.c.id)
            )
            attempts = [_attempt(a) for a in history]
        return _with_history(_job(row), attempts)

    async def retry_jobs(
        self, ids: Sequence[int], now: float, tenant_ids: Sequence[str] | None = None
    ) -> int:
        """Queue these jobs again now, with a fresh round of attempts."""
        conditions = [jobs.c.id.in_(list(ids)), jobs.c.status.in_(RETRYABLE)]
        if tenant_ids is not None:
            conditions.append(jobs.c.tenant_id.in_(list(tenant_ids)))
        stmt = (
            update(jobs)
            .where(*conditions)
            .values(
                status="pending",
                attempts=0,
                run_at=now,
                discard_reason=None,
                updated_at=now,
            )
        )
        async with self.backend.write() as conn:
            return int((await conn.execute(stmt)).rowcount)

    async def discard_jobs(
        self, ids: Sequence[int], reason: str, now: float, tenant_ids: Sequence[str] | None = None
    ) -> int:
        conditions = [jobs.c.id.in_(list(ids)), jobs.c.status.in_(("failed", "dead", "pending"))]
        if tenant_ids is not None:
            conditions.append(jobs.c.tenant_id.in_(list(tenant_ids)))
        stmt = (
            update(jobs)
            .where(*conditions)
            .values(status="discarded", discard_reason=reason, updated_at=now)
        )
        async with self.backend.write() as conn:
            return int((await conn.execute(stmt)).rowcount)

    async def enqueue(self, rows: Sequence[JobRow], *, force: bool, now: float) -> int:
        """Replay: add jobs that do not exist yet (one per (event, rule));
        with ``force``, also queue again the ones that exist and are
        finished. Returns how many were queued."""
        if not rows:
            return 0
        queued = 0
        insert_new = self.backend.insert_new(jobs)
        async with self.backend.write() as conn:
            for row in rows:
                values = row._asdict()
                if (await conn.execute(insert_new.values(**values))).rowcount == 1:
                    queued += 1
                elif force:
                    queued += await _requeue(conn, values, now)
        return queued

    async def existing_jobs(self, positions: Sequence[int]) -> dict[tuple[int, str], str]:
        """(event position, rule id) -> status, for these events (a pair
        still in the outbox counts as pending)."""
        wanted = list(positions)
        stmt = select(jobs.c.event_position, jobs.c.rule_id, jobs.c.status).where(
            jobs.c.event_position.in_(wanted)
        )
        queued = select(outbox.c.event_position, outbox.c.rule_ids).where(
            outbox.c.event_position.in_(wanted)
        )
        async with self.backend.read() as conn:
            found = {(p, r): s for p, r, s in await conn.execute(stmt)}
            for position, rule_ids in await conn.execute(queued):
                for rule_id in rule_ids.split():
                    found.setdefault((position, rule_id), "pending")
        return found

    async def queued_for(self, event_id: str, tenant_ids: Sequence[str] | None) -> int:
        """Jobs of this event still in the outbox (not yet made)."""
        stmt = select(outbox.c.rule_ids).where(outbox.c.event_id == event_id)
        if tenant_ids is not None:
            stmt = stmt.where(outbox.c.tenant_id.in_(list(tenant_ids)))
        async with self.backend.read() as conn:
            return sum(len(ids.split()) for (ids,) in await conn.execute(stmt))

    async def prune_jobs(self, before: float, batch: int = 1000) -> int:
        """Delete one batch of jobs that *finished* (succeeded or discarded)
        before ``before``, with their attempts. Dead jobs are never pruned:
        they wait for an operator to retry or discard them."""
        doomed = (
            select(jobs.c.id)
            .where(jobs.c.status.in_(("succeeded", "discarded")), jobs.c.updated_at < before)
            .limit(batch)
        )
        async with self.backend.write() as conn:
            ids = [i for (i,) in await conn.execute(doomed)]
            if ids:
                await conn.execute(delete(job_attempts).where(job_attempts.c.job_id.in_(ids)))
                await conn.execute(delete(jobs).where(jobs.c.id.in_(ids)))
        return len(ids)


_FINISH = (
    update(jobs)
    .where(jobs.c.id == bindparam("job"))
    .values(
        status=bindparam("new_status"),
        run_at=func.coalesce(bindparam("next_run", type_=Float), jobs.c.run_at),
        lease_until=None,
        last_error=bindparam("error"),
        updated_at=bindparam("done_at"),
    )
)


def _finish_params(result: JobResult) -> dict[str, Any]:
    a = result.attempt
    return {
        "job": result.job_id,
        "new_status": result.status,
        "next_run": result.run_at,
        "error": result.error,
        "done_at": a.started_at + a.duration_ms / 1000.0,
    }


async def _requeue(conn: AsyncConnection, values: dict[str, Any], now: float) -> int:
    changed = await conn.execute(
        update(jobs)
        .where(
            jobs.c.event_position == values["event_position"],
            jobs.c.rule_id == values["rule_id"],
            jobs.c.status.in_(RETRYABLE),
        )
        .values(status="pending", attempts=0, run_at=now, discard_reason=None, updated_at=now)
    )
    return int(changed.rowcount)


def _job_conditions(query: JobFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if query.tenant_ids is not None:
        conditions.append(jobs.c.tenant_id.in_(list(query.tenant_ids)))
    if query.statuses:
        conditions.append(jobs.c.status.in_(list(query.statuses)))
    if query.rule_id is not None:
        conditions.append(jobs.c.rule_id == query.rule_id)
    if query.event_id is not None:
        conditions.append(jobs.c.event_id == query.event_id)
    if query.event_type is not None:
        conditions.append(jobs.c.event_type == query.event_type)
    if query.since is not None:
        conditions.append(jobs.c.created_at >= query.since)
    if query.until is not None:
        conditions.append(jobs.c.created_at < query.until)
    if query.before_id is not None:
        conditions.append(jobs.c.id < query.before_id)
    return conditions


def _attempt_row(result: JobResult) -> dict[str, Any]:
    a = result.attempt
    return {
        "job_id": result.job_id,
        "attempt": a.attempt,
        "started_at": a.started_at,
        "duration_ms": a.duration_ms,
        "outcome": a.outcome,
        "status_code": a.status_code,
        "detail": a.detail[:2000],
        "worker": a.worker,
    }


def _with_history(job: JobRecord, attempts: Sequence[AttemptRecord]) -> JobRecord:
    fields = {name: getattr(job, name) for name in JobRecord.__slots__}
    return JobRecord(**{**fields, "history": tuple(attempts)})


def _job(row: Any) -> JobRecord:
    return JobRecord(
        id=int(row.id),
        tenant_id=row.tenant_id,
        rule_id=row.rule_id,
        event_position=int(row.event_position),
        event_id=row.event_id,
        event_type=row.event_type,
        status=row.status,
        attempts=int(row.attempts),
        run_at=float(row.run_at),
        lease_until=row.lease_until,
        worker=row.worker,
        last_error=row.last_error,
        discard_reason=row.discard_reason,
        created_at=float(row.created_at),
        updated_at=float(row.updated_at),
        request_id=row.request_id,
    )


def _attempt(row: Any) -> AttemptRecord:
    return AttemptRecord(
        attempt=int(row.attempt),
        started_at=float(row.started_at),
        duration_ms=float(row.duration_ms),
        outcome=row.outcome,
        status_code=row.status_code,
        detail=row.detail,
        worker=row.worker,
    )


def _rule(row: Any) -> RuleRecord:
    return RuleRecord(
        id=row.id,
        tenant_id=row.tenant_id,
        name=row.name,
        spec=orjson.loads(row.spec),
        priority=int(row.priority),
        enabled=bool(row.enabled),
        author=row.author,
        created_at=float(row.created_at),
        updated_at=float(row.updated_at),
        disabled_reason=row.disabled_reason,
        deleted_at=row.deleted_at,
    )
