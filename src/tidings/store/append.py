"""Appending to the log, the part both backends share (pure: no I/O).

:func:`existing_queries` is the one duplicate check: the queries that find
which events of a batch are already stored (by ``(tenant, id)`` or
``(tenant, idempotency key)``). :func:`plan_append` then decides, for the
batch, which events are duplicates, which positions the others get and
which rules they match (the outbox: the row naming those rules commits in
the same transaction as its event, so no event is ever stored without its
jobs, nor a job without its event). Each backend runs these inside its own
append transaction (``sql/sqlite.py``, ``sql/postgres.py``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from tidings.core.envelope import Event
from tidings.core.triggers import RuleSet
from tidings.store.records import AppendOutcome, AppendResult, JobRow, NewEvent

Existing = dict[tuple[str, str, str], tuple[str, int]]
ROW_COLUMNS = (
    "position",
    "id",
    "tenant_id",
    "type",
    "entity_type",
    "entity_id",
    "created_at",
    "idempotency_key",
    "body",
)
OUTBOX_COLUMNS = (
    "event_position",
    "tenant_id",
    "event_id",
    "event_type",
    "rule_ids",
    "created_at",
    "request_id",
)
JOB_COLUMNS = JobRow._fields
# Positions are never reused, even when retention has pruned the newest
# events: the head is the larger of the log's end and the pruned horizon.
# ("{}": the two-argument maximum, MAX on SQLite and GREATEST on PostgreSQL.)
HEAD_SQL = (
    "SELECT {}(COALESCE((SELECT MAX(position) FROM events), 0), "
    "COALESCE((SELECT MAX(pruned_through) FROM log_horizons), 0))"
)
# Values per IN list or OR chain, on both backends. A duplicate check binds
# up to 4 parameters per event (tenant and id, tenant and key): 200 stay
# under 999, SQLite's variable limit before 3.32 (PostgreSQL takes 32767).
IN_CHUNK = 200


def named(new_events: Sequence[NewEvent]) -> list[NewEvent]:
    """Events whose producer chose the id or an idempotency key: only those
    can be duplicates (generated ids are fresh ULIDs)."""
    return [n for n in new_events if not n.generated_id or n.idempotency_key]


def existing_queries(candidates: Sequence[NewEvent]) -> Iterator[tuple[str, dict[str, Any]]]:
    """The duplicate check for ``candidates``: one query per
    :data:`IN_CHUNK` of them, with named parameters (which sqlite3 takes
    as they are and SQLAlchemy's ``text`` binds on PostgreSQL). Each
    yields ``(tenant_id, id, idempotency_key, position)`` rows for
    :func:`record_existing`."""
    for start in range(0, len(candidates), IN_CHUNK):
        clauses: list[str] = []
        params: dict[str, Any] = {}
        for i, n in enumerate(candidates[start : start + IN_CHUNK]):
            clauses.append(f"(tenant_id = :t{i} AND id = :i{i})")
            params[f"t{i}"] = n.event.tenant_id
            params[f"i{i}"] = n.event.id
            if n.idempotency_key:
                clauses.append(f"(tenant_id = :t{i} AND idempotency_key = :k{i})")
                params[f"k{i}"] = n.idempotency_key
        query = "SELECT tenant_id, id, idempotency_key, position FROM events WHERE "
        yield query + " OR ".join(clauses), params


def record_existing(found: Existing, rows: Iterable[Sequence[Any]]) -> None:
    for tenant_id, event_id, key, position in rows:
        found[("id", tenant_id, event_id)] = (event_id, position)
        if key is not None:
            found[("key", tenant_id, key)] = (event_id, position)


@dataclass(slots=True)
class AppendPlan:
    results: list[AppendResult]  # one per event, in call order
    stored: list[Event]  # the events to store, consecutive positions after the head
    rows: list[tuple[Any, ...]]  # their rows, in ROW_COLUMNS order
    outbox_rows: list[tuple[Any, ...]]  # their matched rules, in OUTBOX_COLUMNS order
    jobs: int = 0  # (event, rule) pairs in the outbox rows

    def outcome(self) -> AppendOutcome:
        return AppendOutcome(self.results, self.stored, jobs=self.jobs)


def plan_append(
    new_events: Sequence[NewEvent], existing: Existing, head: int, rules: RuleSet | None = None
) -> AppendPlan:
    plan = AppendPlan([], [], [], [])
    for new in new_events:
        ev = new.event
        hit = None if new.generated_id else existing.get(("id", ev.tenant_id, ev.id))
        if hit is None and new.idempotency_key is not None:
            hit = existing.get(("key", ev.tenant_id, new.idempotency_key))
        if hit is not None:
            plan.results.append(AppendResult(hit[0], hit[1], duplicate=True))
            continue
        head += 1
        if not new.generated_id:  # a fresh ULID cannot come again
            existing[("id", ev.tenant_id, ev.id)] = (ev.id, head)
        if new.idempotency_key is not None:
            existing[("key", ev.tenant_id, new.idempotency_key)] = (ev.id, head)
        plan.results.append(AppendResult(ev.id, head))
        ev.position = head  # its place in the log, set once, before anyone sees it
        plan.stored.append(ev)
        created = new.created_at or time.time()
        plan.rows.append(
            (
                head,
                ev.id,
                ev.tenant_id,
                ev.type,
                ev.entity_type,
                ev.entity_id,
                created,
                new.idempotency_key,
                new.body or ev.body_json(),
            )
        )
        if rules:
            matched = rules.match(ev)
            if matched:
                rule_ids = " ".join(t.rule_id for t in matched)
                plan.outbox_rows.append(
                    (head, ev.tenant_id, ev.id, ev.type, rule_ids, created, new.request_id)
                )
                plan.jobs += len(matched)
    return plan


def job_row(event: Event, rule_id: str, run_at: float, now: float) -> JobRow:
    """A pending job of ``rule_id`` for ``event`` (a replay's)."""
    return JobRow(
        event.tenant_id,
        rule_id,
        event.position,
        event.id,
        event.type,
        "pending",
        0,
        run_at,
        now,
        now,
    )
