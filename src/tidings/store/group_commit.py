"""Group commit: concurrent publishes share one durable transaction.

Each ``append`` call waits for the commit that contains its events. One
task drains the queue, so commits (and so positions) are sequential in
this process, and a burst of N concurrent publishers costs one fsync, not
N. After each commit the events go to the feed before any caller is
answered, so a subscriber can never be told about an event later than the
publisher's ``202``.

Every caller is answered: a failed commit fails its callers (503 for a
driver surprise), a failure after the commit (handing events to the feed,
waking the worker) is logged and the callers still get their positions
(the events are durable). The loop runs supervised (``appender``); while
it is dead, ``append`` fails at once with a retryable 503 instead of
queueing. ``stop`` waits at most ``timeout_s`` for queued work, then fails
what is left, so shutdown always ends.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Protocol

from tidings.core.envelope import Event
from tidings.core.histogram import BATCH_BUCKETS, Buckets
from tidings.errors import TidingsError, Unavailable
from tidings.store.ports import EventLog
from tidings.store.records import AppendOutcome, AppendResult, NewEvent
from tidings.supervision import Supervisor

log = logging.getLogger("tidings.store.group_commit")
DEFAULT_MAX_BATCH = 2000
TASK = "appender"


class Committed(Protocol):
    """Who hears of each commit before its callers are answered (the
    hub's :class:`~tidings.hub.feed.Feed`)."""

    def committed(self, events: Sequence[Event], committed_at: float | None = None) -> None: ...


class GroupCommit:
    def __init__(
        self,
        store: EventLog,
        feed: Committed,
        *,
        max_batch: int = DEFAULT_MAX_BATCH,
        on_jobs: Callable[[AppendOutcome], None] | None = None,
        count_tenants: bool = False,
    ) -> None:
        self.store = store
        self.feed = feed
        self.on_jobs = on_jobs  # told when a commit enqueued automation jobs
        self.max_batch = max_batch
        self._queue: deque[tuple[Sequence[NewEvent], asyncio.Future[list[AppendResult]]]] = deque()
        self._wake = asyncio.Event()
        self._supervisor: Supervisor | None = None
        self.appended = 0
        self.commits = 0
        self.batch_sizes = Buckets(BATCH_BUCKETS)  # events per commit, for /metrics
        # events appended per tenant: only when asked (a label per tenant)
        self.per_tenant: dict[str, int] | None = {} if count_tenants else None

    def start(self, supervisor: Supervisor | None = None) -> None:
        self._supervisor = supervisor or Supervisor()
        self._supervisor.spawn(TASK, self._run)

    async def stop(self, timeout_s: float = 5.0) -> None:
        supervisor, self._supervisor = self._supervisor, None
        if supervisor is None:
            return
        deadline = time.monotonic() + timeout_s
        # Let acknowledged-to-be work finish, while a live loop can do it.
        while self._queue and not supervisor.is_dead(TASK) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await supervisor.stop(TASK)
        while self._queue:
            _events, future = self._queue.popleft()
            if not future.done():
                future.set_exception(Unavailable("shutting down before this commit"))

    async def append(self, events: Sequence[NewEvent]) -> list[AppendResult]:
        if self._supervisor is None:
            raise Unavailable("the event log is not accepting writes (shutting down)")
        if self._supervisor.is_dead(TASK):
            raise Unavailable("the event log writer is restarting; retry shortly")
        future: asyncio.Future[list[AppendResult]] = asyncio.get_running_loop().create_future()
        self._queue.append((events, future))
        self._wake.set()
        return await future

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                await self._commit_some()

    async def _commit_some(self) -> None:
        taken: list[tuple[Sequence[NewEvent], asyncio.Future[list[AppendResult]]]] = []
        count = 0
        while self._queue and (not taken or count + len(self._queue[0][0]) <= self.max_batch):
            item = self._queue.popleft()
            taken.append(item)
            count += len(item[0])
        events = [e for batch, _ in taken for e in batch]
        try:
            outcome = await self.store.append_events(events)
        except asyncio.CancelledError:  # the loop was killed mid-commit: answer, then die
            for _, future in taken:
                if not future.done():
                    future.set_exception(Unavailable("the commit was interrupted; retry"))
            raise
        except TidingsError as exc:
            for _, future in taken:
                if not future.done():
                    future.set_exception(exc)
            return
        except Exception as exc:  # a bug or driver surprise: fail the callers, keep running
            log.exception("append failed")
            for _, future in taken:
                if not future.done():
                    future.set_exception(Unavailable(f"append failed: {type(exc).__name__}"))
            return
        self.commits += 1
        self.appended += len(outcome.stored)
        self.batch_sizes.observe(len(outcome.stored))
        if self.per_tenant is not None:
            _count_tenants(self.per_tenant, outcome.stored)
        try:
            self.feed.committed(outcome.stored, time.time())
            if outcome.jobs and self.on_jobs is not None:
                self.on_jobs(outcome)
        except Exception:  # durable already: answer the callers regardless
            log.exception("handing committed events on failed (positions %s..)", _first(outcome))
        offset = 0
        for batch, future in taken:
            if not future.done():
                future.set_result(outcome.results[offset : offset + len(batch)])
            offset += len(batch)


def _count_tenants(counts: dict[str, int], events: Sequence[Event]) -> None:
    for event in events:
        counts[event.tenant_id] = counts.get(event.tenant_id, 0) + 1


def _first(outcome: AppendOutcome) -> int | None:
    return outcome.stored[0].position if outcome.stored else None
