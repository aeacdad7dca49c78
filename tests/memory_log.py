"""Small in-memory fakes for unit tests of the hub's feed and replay: the
read side of the store (only the methods ``hub/feed.py`` and
``hub/resume.py`` call) and a stream that records what it is given."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from tidings.core.audience import Viewer
from tidings.core.envelope import Event
from tidings.core.patterns import TypeFilter
from tidings.hub.stream import BaseStream, CloseReason, Frame
from tidings.store.base import LogQuery

TENANT = "t1"
READ = "permission:qms.read"


def make_event(position: int, *, tenant: str = TENANT, **fields: Any) -> Event:
    values: dict[str, Any] = {
        "id": f"evt_{position:04d}",
        "type": "qms.car.updated",
        "tenant_id": tenant,
        "entity_type": "car",
        "entity_id": "c1",
        "action": "UPDATED",
        "timestamp": "2025-11-06T09:00:00.000Z",
        "actor": None,
        "metadata": {},
        "data": {"n": position},
        "audiences": (READ,),
        "schema": "payload.QmsCarUpdated.v1",
        **fields,
    }
    return Event(position=position, **values)


def reader(tenant: str = TENANT, **fields: Any) -> Viewer:
    """A viewer of ``tenant`` holding the audience every test event has."""
    values: dict[str, Any] = {
        "audiences": frozenset({READ}),
        "permissions": frozenset({"qms.read"}),
        **fields,
    }
    return Viewer(tenant_id=tenant, **values)


Hook = Callable[[], Awaitable[None]]


class Gate:
    """A ``before_read`` hook that holds every read until ``released`` is
    set; ``reading`` is set once a read is waiting."""

    def __init__(self) -> None:
        self.reading = asyncio.Event()
        self.released = asyncio.Event()

    async def __call__(self) -> None:
        self.reading.set()
        await self.released.wait()


class MemoryLog:
    """The log in memory, read the way the SQL store reads it: positions
    ascending, ``after`` exclusive, ``before`` exclusive, at most ``limit``.

    ``fail`` makes the next reads raise it; ``before_read`` runs inside
    every read before it answers (what commits meanwhile, or a wait the
    test releases). ``reads`` lists the reads, as ``(method, after)``.
    """

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.pruned_through: dict[str, int] = {}
        self.fail: Exception | None = None
        self.before_read: Hook | None = None
        self.reads: list[tuple[str, int | None]] = []
        self.queries: list[LogQuery] = []

    def append(self, count: int, **fields: Any) -> list[Event]:
        start = self.head
        added = [make_event(start + i, **fields) for i in range(1, count + 1)]
        self.events.extend(added)
        return added

    @property
    def head(self) -> int:
        return self.events[-1].position if self.events else 0

    async def _read(self, method: str, after: int | None) -> None:
        self.reads.append((method, after))
        if self.before_read is not None:
            await self.before_read()
        if self.fail is not None:
            raise self.fail

    # -- the store's read side ------------------------------------------------

    async def head_position(self) -> int:
        await self._read("head_position", None)
        return self.head

    async def read_events(self, after: int, limit: int) -> list[Event]:
        await self._read("read_events", after)
        return [e for e in self.events if e.position > after][:limit]

    async def log_horizon(self, tenant_ids: Sequence[str] | None) -> int:
        await self._read("log_horizon", None)
        scope = self.pruned_through if tenant_ids is None else tenant_ids
        return max((self.pruned_through.get(t, 0) for t in scope), default=0)

    async def query_events(self, query: LogQuery) -> list[Event]:
        await self._read("query_events", query.after)
        self.queries.append(query)
        found = [
            e
            for e in self.events
            if (query.tenant_ids is None or e.tenant_id in query.tenant_ids)
            and (query.after is None or e.position > query.after)
            and (query.before is None or e.position < query.before)
        ]
        return found[: query.limit]


class Recorder(BaseStream):
    """A stream that keeps what it is given: event positions in order,
    control messages, and each write's size and kind."""

    def __init__(self, viewer: Viewer | None = None, types: str | None = None) -> None:
        super().__init__(viewer or reader(), TypeFilter.parse(types), user_key=None)
        self.positions: list[int] = []
        self.controls: list[Frame] = []
        self.writes: list[tuple[int, bool]] = []  # (frames, replay)
        self.drains = 0

    def deliver(self, frame: Frame) -> None:
        self.deliver_many([frame])

    def deliver_many(self, frames: list[Frame], *, replay: bool = False) -> None:
        self.writes.append((len(frames), replay))
        self.positions.extend(f.position for f in frames if f.position is not None)
        self.last_position = frames[-1].position or self.last_position

    def write_control(self, frame: Frame) -> None:
        self.controls.append(frame)

    def heartbeat(self) -> None:
        pass

    def close(self, reason: CloseReason, retry_ms: int | None = None) -> None:
        if self._closed(reason):
            self.controls.append(reason.frame(self.last_position))

    async def drain(self) -> None:
        self.drains += 1
        await asyncio.sleep(0)
