"""Replay (seed 001): run a time range of the log through the rules again.

Each event is matched against today's enabled rules; a job is queued for
every (event, rule) pair that has none yet. Pairs that already have a job
are left alone (a job that succeeded does not run twice) unless ``force``
queues them again. A dry run only counts.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tidings.automation.rules import Rule
from tidings.core.triggers import RuleSet
from tidings.errors import InvalidInput, NotFound
from tidings.store.append import job_row
from tidings.store.base import LogQuery

if TYPE_CHECKING:
    from tidings.store.ports import Store  # its EventLog and JobQueue (store.jobs) roles

PAGE = 500


@dataclass(slots=True)
class ReplayReport:
    events: int = 0  # events in the range
    scanned: int = 0
    matched: int = 0  # (event, rule) pairs the rules match
    queued: int = 0  # jobs queued (or that would be, in a dry run)
    existing: Counter[str] = field(default_factory=Counter)  # pairs with a job, by its status
    by_rule: Counter[str] = field(default_factory=Counter)  # queued, per rule
    dry_run: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "scanned": self.scanned,
            "matched": self.matched,
            "queued": self.queued,
            "existing": dict(self.existing),
            "byRule": dict(self.by_rule),
            "dryRun": self.dry_run,
        }


async def replay(
    store: Store,
    rules: RuleSet,
    *,
    since: float,
    until: float,
    tenant_id: str | None = None,
    dry_run: bool = False,
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> ReplayReport:
    """Match ``[since, until)`` of the log (``tenant_id``'s events only,
    unless None) against ``rules`` and queue the missing jobs (the engine:
    the caller checks the range, the tenant and wakes the worker, see
    :mod:`tidings.services.jobs`). ``progress(done, total)`` after each page.
    Uses the store's ``EventLog`` (count, query) and ``JobQueue`` roles."""
    query = LogQuery(tenant_ids=[tenant_id] if tenant_id else None, since=since, until=until)
    report = ReplayReport(events=await store.count_events(query), dry_run=dry_run)
    after = 0
    while True:
        page = await store.query_events(
            LogQuery(query.tenant_ids, since=since, until=until, after=after, limit=PAGE)
        )
        if not page:
            break
        after = page[-1].position
        now = time.time()
        rows = [job_row(ev, t.rule_id, now, now) for ev in page for t in rules.match(ev)]
        existing = await store.jobs.existing_jobs([ev.position for ev in page])
        report.scanned += len(page)
        report.matched += len(rows)
        fresh = []
        for row in rows:
            status = existing.get((row[2], row[1]))
            if status is not None:
                report.existing[status] += 1
            if status is None or (force and status != "pending" and status != "running"):
                fresh.append(row)
                report.by_rule[row[1]] += 1
        if dry_run:
            report.queued += len(fresh)
        else:
            report.queued += await store.jobs.enqueue(fresh, force=force, now=now)
        if progress is not None:
            progress(report.scanned, report.events)
    return report


def choose_rules(
    rules: Mapping[str, Rule], tenant_id: str | None, rule_id: str | None, tenant_rules_only: bool
) -> RuleSet:
    """The enabled rules a replay of ``tenant_id`` (None: every tenant) runs:
    global and that tenant's, only the tenant's with ``tenant_rules_only``,
    or the one ``rule_id`` (404 when not in that choice, 422 when disabled)."""
    scopes = (tenant_id,) if tenant_rules_only else (None, tenant_id)
    chosen = [
        r for r in rules.values() if r.enabled and (tenant_id is None or r.tenant_id in scopes)
    ]
    if rule_id is not None:
        rule = rules.get(rule_id)
        if rule is None or (tenant_rules_only and rule.tenant_id != tenant_id):
            raise NotFound(f"no rule {rule_id!r}", field="rule")
        if not rule.enabled:
            raise InvalidInput(f"rule {rule_id!r} is disabled", field="rule")
        chosen = [rule]
    return RuleSet(r.trigger for r in chosen)
