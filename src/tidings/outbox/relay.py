"""The relay: committed outbox rows -> the hub's log, exactly once, in order.

Each round takes up to ``batch_size`` pending rows in ``seq`` order and
publishes them with ``hub.publish_many`` (durable when it returns). Then
the rows are *settled* in the host's database: the published ones deleted,
the refused ones marked. The running loop settles in the background, while
the next round publishes: on SQLite the delete waits for the one write lock,
which a busy host holds most of the time, and publishing must not wait
with it. Until settled, a row is remembered and left out of the next
rounds. Guarantees:

* **Exactly once.** Every row carries its event id. A crash after the
  publish and before the rows are settled leaves them, and the next relay
  publishes them again; the log stores an event once per ``(tenant, id)`` and
  answers ``duplicate`` for the repeat (for as long as the first copy is
  in the log, i.e. its tenant's retention: days, not seconds).
* **In order.** One relay at a time per table (PostgreSQL: a transaction
  advisory lock keyed on the table name; SQLite has one writer, so rows
  commit in ``seq`` order and a reader sees a prefix), rows in ``seq``
  order, a batch appended as one consecutive run of positions. (PostgreSQL
  draws ``seq`` at insert, not at commit: of two overlapping host
  transactions the later ``seq`` may commit, and be relayed, first.)
* **Refused rows never block, never vanish.** A row the hub refuses (its
  tenant unknown or closed, its type gone from the catalog, a schema
  mismatch) is marked ``refused`` with the error, logged, counted in
  :attr:`OutboxRelay.stats`; the rows behind it go on (so it lands after
  them if retried). :meth:`retry_refused` puts it back in line.
* A failure of either database (``Unavailable``, a SQLAlchemy error) stops
  the round with nothing lost; the loop retries after ``retry_s``.

The loop runs under the hub's supervisor (restarted if it dies, listed by
``/readyz`` meanwhile). ``wake()`` after the host's commit relays at once;
a poll every ``poll_s`` picks up rows other processes committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tidings.errors import TidingsError
from tidings.outbox.table import PENDING, REFUSED, lock_key
from tidings.outbox.writer import Outbox, RefusedRow

if TYPE_CHECKING:
    from tidings.node import Tidings

log = logging.getLogger("tidings.outbox")
AfterPublish = Callable[[Sequence[str]], Awaitable[None]]
_BATCH_INDEX = re.compile(r"^/events/(\d+)(?:/|$)")
FAILURES = (TidingsError, SQLAlchemyError, OSError)  # a database or the hub is down: retried
IN_CHUNK = 500  # seqs per DELETE ... IN (under SQLite's oldest variable limit, 999)
STOP_SETTLE_S = 5.0


@dataclass(slots=True)
class RelayStats:
    """What the relay did since it was made (read by hosts, tests, metrics)."""

    relayed: int = 0  # events newly appended to the log
    duplicates: int = 0  # rows whose event was already there (a republish)
    refused: int = 0  # rows the hub refused, kept with their error
    rounds: int = 0  # rounds that moved at least one row
    failures: int = 0  # rounds stopped by a database failure (retried)
    last_error: str = ""
    relayed_at: float = 0.0  # epoch seconds of the last row relayed


@dataclass(slots=True)
class _Row:
    seq: int
    event_id: str
    envelope: dict[str, Any]


@dataclass(slots=True)
class _Outcome:
    published: list[_Row] = field(default_factory=list)
    refused: list[tuple[_Row, TidingsError]] = field(default_factory=list)


class OutboxRelay:
    """Relays ``outbox``'s committed rows from the host's ``engine`` to ``hub``.

    ``after_publish`` (tests, tools): awaited with the event ids of a
    batch once the hub holds them and before their rows are deleted."""

    def __init__(
        self,
        engine: AsyncEngine,
        outbox: Outbox,
        hub: Tidings,
        *,
        batch_size: int = 200,
        poll_s: float = 0.25,
        retry_s: float = 1.0,
        after_publish: AfterPublish | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.engine = engine
        self.outbox = outbox
        self.table = outbox.table
        self.hub = hub
        self.batch_size = batch_size
        self.poll_s = poll_s
        self.retry_s = retry_s
        self.after_publish = after_publish
        self.stats = RelayStats()
        self.task_name = f"outbox-relay:{self.table.fullname}"
        self.max_unsettled = 20 * batch_size  # past it, a round waits for the settle
        self._wake = asyncio.Event()
        self._round = asyncio.Lock()  # one round at a time in this process
        self._settling = asyncio.Lock()
        self._lock_key = lock_key(self.table.fullname)
        # Rows published (None) or refused (the error) whose settle has not
        # committed yet: seq -> fate. Left out of every round meanwhile.
        self._unsettled: dict[int, str | None] = {}
        self._settler: asyncio.Task[None] | None = None

    # -- running ----------------------------------------------------------

    def start(self) -> None:
        """Start the loop under the hub's supervisor (call in a running
        event loop, after ``await hub.start()``)."""
        if not self.hub.started:
            raise RuntimeError("start the hub (await hub.start()) before its outbox relay")
        self.hub.supervisor.spawn(self.task_name, self._run)

    async def stop(self) -> None:
        """Stop the loop, then settle what it published (a round in flight
        is cancelled, and rows left unsettled by a database failure stay:
        the next relay publishes them again, as duplicates the log ignores)."""
        await self.hub.supervisor.stop(self.task_name)
        with contextlib.suppress(TidingsError, SQLAlchemyError, OSError, TimeoutError):
            async with asyncio.timeout(STOP_SETTLE_S):
                await self.settle()

    async def __aenter__(self) -> OutboxRelay:
        self.start()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def wake(self) -> None:
        """Rows were just committed: relay now rather than at the next poll."""
        self._wake.set()

    async def _run(self) -> None:
        while True:
            try:
                moved = await self._step()
            except FAILURES as exc:
                self._failed("round", exc)
                await self._pause(self.retry_s)
                continue
            if not moved:
                await self._pause(self.poll_s)

    async def _step(self) -> int:
        """A round, its rows settled in the background (or now, past
        ``max_unsettled``: that bounds the memory and each round's read)."""
        moved = await self._one_round()
        if len(self._unsettled) >= self.max_unsettled:
            await self.settle()
        elif self._unsettled and (self._settler is None or self._settler.done()):
            self._settler = asyncio.get_running_loop().create_task(self._settle_later())
        return moved

    async def _settle_later(self) -> None:
        try:
            await self.settle()
        except FAILURES as exc:  # the rows stay remembered; the loop tries again
            self._failed("settle", exc)

    def _failed(self, what: str, exc: BaseException) -> None:
        self.stats.failures += 1
        self.stats.last_error = f"{type(exc).__name__}: {exc}"
        log.warning("outbox relay %s failed, retrying: %s", what, self.stats.last_error)

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    async def drain(self) -> int:
        """Relay rounds until no pending row is left (or another relay holds
        the table); returns the rows moved (published or refused)."""
        total = 0
        while moved := await self._step():
            total += moved
        await self.settle()
        return total

    # -- one round --------------------------------------------------------

    async def relay_once(self) -> int:
        """One batch, published and settled: returns how many rows left
        ``pending`` (0: none, or another relay holds the table)."""
        moved = await self._one_round()
        await self.settle()
        return moved

    async def _one_round(self) -> int:
        """Publish one batch and remember the rows' fates (not settled yet)."""
        async with self._round:
            self._wake.clear()  # a wake from here on asks for another round
            async with self.engine.connect() as conn, conn.begin():
                if not await self._lock(conn):
                    return 0
                rows = await self._pending(conn)
                if not rows:
                    return 0
                outcome = await self._publish(rows)
                # At once: a stop that cancels this round from here on must
                # not leave published rows to be published again.
                self._remember(outcome)
                if outcome.published and self.after_publish is not None:
                    await self.after_publish([r.event_id for r in outcome.published])
            return len(outcome.published) + len(outcome.refused)

    def _remember(self, outcome: _Outcome) -> None:
        for row in outcome.published:
            self._unsettled[row.seq] = None
        for row, exc in outcome.refused:
            error = _describe(exc)
            self._unsettled[row.seq] = error
            self.stats.refused += 1
            self.stats.last_error = error
            log.warning(
                "outbox row refused by the hub and kept: event %s (%s, tenant %s): %s",
                row.event_id,
                row.envelope.get("type"),
                row.envelope.get("tenantId"),
                error,
            )
        if outcome.published:
            self.stats.relayed_at = time.time()
        self.stats.rounds += 1

    async def _lock(self, conn: AsyncConnection) -> bool:
        """PostgreSQL: this transaction relays the table alone (False:
        another relay does). SQLite needs none (see the module's docstring)."""
        if conn.dialect.name != "postgresql":
            return True
        query = text("SELECT pg_try_advisory_xact_lock(:key)")
        return bool((await conn.execute(query, {"key": self._lock_key})).scalar_one())

    async def _pending(self, conn: AsyncConnection) -> list[_Row]:
        t = self.table
        # Taken before the read: a settle that commits while it runs forgets
        # rows this read may still see.
        skip = set(self._unsettled)
        query = (
            select(t.c.seq, t.c.event_id, t.c.body)
            .where(t.c.state == PENDING)
            .order_by(t.c.seq)
            .limit(self.batch_size + len(skip))
        )
        fresh = [row for row in (await conn.execute(query)).all() if row[0] not in skip]
        return [
            _Row(seq, event_id, orjson.loads(body))
            for seq, event_id, body in fresh[: self.batch_size]
        ]

    async def _publish(self, rows: list[_Row]) -> _Outcome:
        """Publish ``rows`` in order; a refused one is set aside and the
        rest go on. A hub failure after some rows went through ends the
        round with those (the rest stay pending); before, it raises."""
        outcome = _Outcome()
        queue, limit, one_by_one = rows, len(rows), False
        while queue:
            chunk = queue[:1] if one_by_one else queue[:limit]
            try:
                results = await self.hub.publish_many([r.envelope for r in chunk])
            except TidingsError as exc:
                if exc.retryable:
                    if outcome.published or outcome.refused:
                        break
                    raise
                if len(chunk) == 1:
                    outcome.refused.append((chunk[0], exc))
                    queue = queue[1:]
                    limit = len(queue)
                    continue
                # The rows before the one the error names go first, then
                # it alone; an error naming no row: one at a time.
                index = _failed_index(exc, len(chunk))
                if index is None:
                    one_by_one = True
                limit = max(index or 0, 1)
                continue
            outcome.published.extend(chunk)
            duplicates = sum(r.duplicate for r in results)
            self.stats.duplicates += duplicates
            self.stats.relayed += len(results) - duplicates
            queue = queue[len(chunk) :]
            limit = len(queue)
        return outcome

    async def settle(self) -> None:
        """Write the remembered fates in one host transaction: delete the
        published rows, mark the refused ones with their error. A row is
        forgotten only once that commits."""
        async with self._settling:
            fates = dict(self._unsettled)
            if not fates:
                return
            t = self.table
            published = [seq for seq, error in fates.items() if error is None]
            now = time.time()
            async with self.engine.begin() as conn:
                for start in range(0, len(published), IN_CHUNK):
                    chunk = published[start : start + IN_CHUNK]
                    await conn.execute(delete(t).where(t.c.seq.in_(chunk)))
                for seq, error in fates.items():
                    if error is not None:
                        await conn.execute(
                            update(t)
                            .where(t.c.seq == seq)
                            .values(
                                state=REFUSED,
                                error=error,
                                refused_at=now,
                                attempts=t.c.attempts + 1,
                            )
                        )
            for seq in fates:
                del self._unsettled[seq]

    # -- refused rows -----------------------------------------------------

    async def refused(self, limit: int = 100) -> list[RefusedRow]:
        """The rows the hub refused, oldest first."""
        async with self.engine.connect() as conn:
            return await self.outbox.refused_async(conn, limit)

    async def retry_refused(self, event_ids: list[str] | None = None) -> int:
        """Put refused rows (all, or those ids) back in line and wake the
        loop; returns how many."""
        async with self.engine.begin() as conn:
            count = await self.outbox.retry_async(conn, event_ids)
        self.wake()
        return count


def _failed_index(exc: TidingsError, size: int) -> int | None:
    """The batch index an ingest/admit error names (``/events/3/...``)."""
    match = _BATCH_INDEX.match(getattr(exc, "field", None) or "")
    if match is None:
        return None
    index = int(match.group(1))
    return index if index < size else None


def _describe(exc: TidingsError) -> str:
    where = _BATCH_INDEX.sub("/", getattr(exc, "field", None) or "", count=1)
    suffix = f" (at {where})" if where and where != "/" else ""
    return f"{exc.status} {exc.code}: {exc}{suffix}"
