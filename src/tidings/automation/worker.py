"""The job worker: claim due jobs, run their actions, record every attempt.

One loop claims as many due jobs as there are free slots (under a lease),
each runs as its own task, and their results are written back in batches
by one flusher, so a busy worker costs a transaction per batch, not per
job. A job whose worker died keeps its lease until it runs out; then any
worker *reaps* it (recording an ``abandoned`` attempt) and it is retried
on its rule's schedule. Jobs therefore run at least once; actions make
that exactly-once where the other side can tell (``webhook-id``,
``Message-ID``, idempotency keys of follow-up events).

Every attempt that ran a webhook rule's action is also a *delivery*,
written with the results: a success ends the rule's run of failures, a
failure extends it, and a run of at least ``webhook_disable_after_failures``
attempts spanning at least ``webhook_disable_after_s`` disables the rule,
through the same path as an endpoint that answered 410 Gone
(:meth:`RuleBook.disable`). Attempts that never reached the action (rule
disabled or deleted, event pruned, template error, lost lease) do not count.

The claim and flush loops run supervised (``worker.claim``,
``worker.flush``): an error in one round is logged and the loop goes on,
and a loop that dies anyway shows on ``/readyz`` and is restarted.

A job runs only while its tenant accepts writes (the node's admit gate, asked
before every attempt): for a READ_ONLY or SUSPENDED tenant the attempt
fails with the reason and is retried on the rule's schedule (a short
suspension delays it; a long one leaves it dead, for an operator to retry
after reactivation); for a DEPROVISIONING, ARCHIVED or unknown tenant it
is dead at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from tidings.automation.actions import ActionContext, ActionHost, ActionRegistry, one_line
from tidings.automation.outcome import ActionOutcome
from tidings.automation.rulebook import RuleBook
from tidings.automation.rules import Rule
from tidings.automation.templates import TemplateError, event_context
from tidings.automation.webhook import webhook_client
from tidings.core.envelope import UNREADABLE_TYPE, event_from_row, iso_utc
from tidings.core.histogram import SLOW_BUCKETS_S, Buckets
from tidings.core.retry import RetryPolicy, parse_retry
from tidings.errors import TidingsError
from tidings.services.ports import AdmitGate
from tidings.store.base import AttemptRecord, JobRecord, JobResult
from tidings.store.jobs import Delivery

if TYPE_CHECKING:
    from tidings.store.ports import Store  # its EventLog and JobQueue (store.jobs) roles

log = logging.getLogger("tidings.worker")
REAP_EVERY_S = 2.0
TRACKED_ACTIONS = frozenset({"trigger_webhook"})  # endpoints disabled when they keep failing
CLAIM_TASK, FLUSH_TASK = "worker.claim", "worker.flush"
HELD_STATES = frozenset({"READ_ONLY", "SUSPENDED"})  # may come back: retried, not dead


def settle(
    job: JobRecord, outcome: ActionOutcome, policy: RetryPolicy, now: float, rand: float
) -> tuple[str, float | None]:
    """The job's next status after an attempt, and when to try again."""
    if outcome.ok:
        return "succeeded", None
    if outcome.permanent:
        return "dead", None
    delay = policy.next_delay(max(job.attempts, 1), retry_after=outcome.retry_after, rand=rand)
    if delay is None:
        return "dead", None
    return "failed", now + delay


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    """How one worker runs (from :class:`tidings.config.Settings`)."""

    concurrency: int = 16  # jobs at once
    lease_s: float = 120.0  # a claimed job is this worker's for so long
    poll_s: float = 1.0  # look for due jobs at least this often
    max_event_depth: int = 32  # nesting allowed when reading an event back from the log
    disable_after_failures: int = 20  # a webhook rule's run of failures that disables it
    disable_after_s: float = 5 * 86400.0  # ... once it also spans this long (0 failures: never)


class Worker:
    """Uses the store's ``JobQueue`` role (claim, expired, finish, record
    deliveries); finds each job's rule in ``rulebook`` (and disables rules
    through it); asks ``admit`` before each attempt; runs actions from
    ``actions`` with an :class:`ActionContext` around ``host``; its loops
    run under ``host.supervisor``."""

    def __init__(
        self,
        store: Store,
        rulebook: RuleBook,
        actions: ActionRegistry,
        host: ActionHost,
        *,
        admit: AdmitGate,
        worker_id: str,
        settings: WorkerSettings = WorkerSettings(),
    ) -> None:
        self.store = store
        self.rulebook = rulebook
        self.actions = actions
        self.host = host
        self._admit = admit
        self.settings = settings
        self.id = worker_id
        self.concurrency = settings.concurrency
        self.lease_s = settings.lease_s
        self.poll_s = settings.poll_s
        self.stats: Counter[str] = Counter()  # jobs by the status an attempt left them in
        self.outcomes: Counter[str] = Counter()  # attempts: succeeded, failed, abandoned
        # Attempts of webhook rules that ran the action: their duration per rule id.
        self.webhook_seconds: dict[str, Buckets] = {}
        self._wake = asyncio.Event()
        self._results: list[JobResult] = []
        self._deliveries: list[Delivery] = []
        self._have_results = asyncio.Event()
        self._running: set[asyncio.Task[None]] = set()
        self._started = False
        self._http: httpx.AsyncClient | None = None
        self._last_reap = 0.0

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._http = webhook_client(allow_private=self.host.allow_private_webhooks)
        supervisor = self.host.supervisor
        supervisor.spawn(CLAIM_TASK, self._claim_loop)
        supervisor.spawn(FLUSH_TASK, self._flush_loop)
        self._started = True

    async def stop(self, grace_s: float = 5.0) -> None:
        """Stop claiming, give running jobs ``grace_s`` to finish (the rest
        are reclaimed after their lease), write what finished."""
        if not self._started:
            return
        self._started = False
        supervisor = self.host.supervisor
        await supervisor.stop(CLAIM_TASK)
        if self._running:
            await asyncio.wait(self._running, timeout=grace_s)
        for task in self._running:
            task.cancel()
        try:
            await self._flush()
        except TidingsError as exc:  # their leases run out; other workers redo them
            log.warning("job results not recorded at shutdown: %s", exc)
        await supervisor.stop(FLUSH_TASK)
        if self._http is not None:
            await self._http.aclose()

    # -- claiming -------------------------------------------------------------

    async def _claim_loop(self) -> None:
        while True:
            try:
                claimed = await self._claim_some()
            except TidingsError as exc:  # the database is down: try again next round
                log.warning("claiming jobs failed: %s", exc)
                claimed = 0
            except Exception:
                log.exception("claiming jobs failed")
                claimed = 0
            if claimed and len(self._running) < self.concurrency:
                continue  # there may be more due right now
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_s)
            self._wake.clear()

    async def _claim_some(self) -> int:
        now = time.time()
        if now - self._last_reap >= REAP_EVERY_S:
            self._last_reap = now
            await self._reap(now)
        free = self.concurrency - len(self._running)
        if free <= 0 or (self._running and free < self.concurrency // 2):
            return 0  # claim in batches: a transaction per half-pool, not per job
        claimed = await self.store.jobs.claim(
            self.id, free, self.lease_s, now, self.rulebook.first_delays()
        )
        for job, body in claimed:
            task = asyncio.get_running_loop().create_task(self._execute(job, body))
            self._running.add(task)
            task.add_done_callback(self._finished)
        return len(claimed)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._wake.set()  # a slot is free

    async def _reap(self, now: float) -> None:
        for job in await self.store.jobs.expired(now):
            rule = await self.rulebook.get(job.rule_id)
            policy = rule.retry if rule is not None else parse_retry(None)
            outcome = ActionOutcome.failed(f"{job.worker} lost its lease (died or hung)")
            started = (job.lease_until or now) - self.lease_s
            self._record(job, outcome, policy, started, now, worker=job.worker, label="abandoned")
            self.stats["abandoned"] += 1

    # -- running ------------------------------------------------------------

    async def _execute(self, job: JobRecord, body: str | None) -> None:
        started = time.time()
        rule = await self.rulebook.get(job.rule_id)
        ran = [False]  # set once the action was started
        try:
            outcome = await self._attempt(job, rule, body, ran)
        except Exception as exc:  # a bug in an action: fail the attempt, keep working
            log.exception("job %s failed unexpectedly", job.id)
            outcome = ActionOutcome.failed(f"{type(exc).__name__}: {one_line(exc)}")
        policy = rule.retry if rule is not None else parse_retry(None)
        self._record(job, outcome, policy, started, time.time())
        if rule is None:
            return
        if outcome.disable_rule:
            await self.rulebook.disable(rule.id, f"endpoint gone: {outcome.detail}")
        elif ran[0] and rule.action_type in TRACKED_ACTIONS:
            self._deliveries.append(Delivery(rule.id, outcome.ok, started, outcome.detail))
        if ran[0] and rule.action_type in TRACKED_ACTIONS:
            buckets = self.webhook_seconds.get(rule.id)
            if buckets is None:
                buckets = self.webhook_seconds[rule.id] = Buckets(SLOW_BUCKETS_S)
            buckets.observe(time.time() - started)

    async def _attempt(
        self, job: JobRecord, rule: Rule | None, body: str | None, ran: list[bool]
    ) -> ActionOutcome:
        if rule is None:
            return ActionOutcome.failed("the rule was deleted", permanent=True)
        if not rule.enabled:
            why = rule.record.disabled_reason or "disabled by an operator"
            return ActionOutcome.failed(f"the rule is disabled ({why})", permanent=True)
        if body is None:
            return ActionOutcome.failed("the event is no longer in the log", permanent=True)
        try:
            tenant = await self._admit(job.tenant_id)
        except TidingsError as exc:
            gone = exc.extra.get("state") not in HELD_STATES
            return ActionOutcome.failed(f"held: {exc.detail}", permanent=gone)
        stored = event_from_row(job.event_position, body, self.settings.max_event_depth)
        if stored.type == UNREADABLE_TYPE:
            return ActionOutcome.failed("the event cannot be read from the log", permanent=True)
        event: dict[str, Any] = stored.to_wire()
        variables = event_context(
            event,
            tenant={"id": job.tenant_id, "name": tenant.name},
            rule={"id": rule.id, "name": rule.record.name},
        )
        actions = self.actions
        try:
            config = actions.render(rule.action_type, rule.config, variables)
        except TemplateError as exc:
            return ActionOutcome.failed(f"template: {one_line(exc)}", permanent=True)
        assert self._http is not None
        ctx = ActionContext(self.host, rule, job, event, tenant, self._http, variables)
        ran[0] = True
        try:
            return await asyncio.wait_for(
                actions.run(rule.action_type, ctx, config), self.lease_s * 0.8
            )
        except TimeoutError:
            return ActionOutcome.failed(f"the action ran past {self.lease_s * 0.8:.0f}s")

    def _record(
        self,
        job: JobRecord,
        outcome: ActionOutcome,
        policy: RetryPolicy,
        started: float,
        now: float,
        *,
        worker: str | None = None,
        label: str | None = None,
    ) -> None:
        status, run_at = settle(job, outcome, policy, now, random.random())
        self.stats[status] += 1
        result = label or ("succeeded" if outcome.ok else "failed")
        self.outcomes[result] += 1
        log.info(
            "job %d (rule %s) attempt %d %s: %s",
            job.id,
            job.rule_id,
            job.attempts,
            result,
            status,
            extra={
                "job_id": job.id,
                "rule_id": job.rule_id,
                "attempt": job.attempts,
                "outcome": result,
                "job_status": status,
                "request_id": job.request_id,
            },
        )
        attempt = AttemptRecord(
            attempt=job.attempts,
            started_at=started,
            duration_ms=round((now - started) * 1000, 3),
            outcome=result,
            status_code=outcome.status,
            detail=outcome.detail,
            worker=worker or self.id,
        )
        error = None if outcome.ok else outcome.detail
        self._results.append(
            JobResult(job.id, worker or self.id, attempt, status, run_at=run_at, error=error)
        )
        self._have_results.set()

    # -- writing results --------------------------------------------------------

    async def _flush_loop(self) -> None:
        while True:
            await self._have_results.wait()
            self._have_results.clear()
            try:
                await self._flush()
            except Exception as exc:  # the database is down: keep them, try again
                log.warning("recording job results failed: %s", exc)
                await asyncio.sleep(self.poll_s)
                self._have_results.set()

    async def _flush(self) -> None:
        if not self._results:
            return
        batch, self._results = self._results, []
        try:
            await self.store.jobs.finish(batch)
        except BaseException:
            self._results = batch + self._results
            raise
        if any(r.status == "failed" for r in batch):
            self._wake.set()  # an immediate retry may be due
        await self._track_deliveries()

    async def _track_deliveries(self) -> None:
        """Fold the finished deliveries into their rules' runs of failures;
        disable the rules whose run passed both limits."""
        if not self._deliveries:
            return
        settings = self.settings
        deliveries, self._deliveries = self._deliveries, []
        try:
            failing = await self.store.jobs.record_deliveries(
                deliveries,
                failures=settings.disable_after_failures,
                window_s=settings.disable_after_s,
            )
        except BaseException:
            self._deliveries = deliveries + self._deliveries
            raise
        for rule in failing:
            reason = (
                f"{rule.failures} consecutive failed deliveries since {iso_utc(rule.since)}; "
                f"last: {rule.last_detail}"
            )
            await self.rulebook.disable(rule.rule_id, reason, failing=rule)
