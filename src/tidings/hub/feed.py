"""The feed: committed events -> the hub, in position order, with no gap.

Events committed by this process arrive through :meth:`Feed.committed`
straight after their commit (no database read). Anything else - another
process's commits, a lost wake-up - is read from the log, which is the
source of truth: a missed notification costs latency, never an event.

The poller runs supervised (``feed``); a failed catch-up read is logged and
retried on the next poll, and reading the log never fails on a row's
content (:func:`tidings.core.envelope.event_from_row`), so no stored event
can wedge the feed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from tidings.core.envelope import Event
from tidings.errors import TidingsError
from tidings.hub.hub import Hub
from tidings.hub.stream import LOG_REWOUND
from tidings.store.ports import EventLog
from tidings.supervision import Supervisor

log = logging.getLogger("tidings.feed")
READ_PAGE = 1000
TASK = "feed"


class Feed:
    def __init__(self, store: EventLog, hub: Hub, *, poll_s: float) -> None:
        self.store = store
        self.hub = hub
        self.poll_s = poll_s
        self._catching_up: asyncio.Task[None] | None = None
        self._supervisor: Supervisor | None = None
        self._again = False

    async def start(self, supervisor: Supervisor | None = None) -> None:
        self.hub.position = await self.store.head_position()
        self._supervisor = supervisor or Supervisor()
        self._supervisor.spawn(TASK, self._poll)

    async def stop(self) -> None:
        if self._supervisor is not None:
            await self._supervisor.stop(TASK)
            self._supervisor = None
        if self._catching_up is not None:
            self._catching_up.cancel()
        self._catching_up = None

    def committed(self, events: Sequence[Event], committed_at: float | None = None) -> None:
        """This process committed ``events`` (consecutive positions)."""
        if not events:
            return
        # Safe even while a catch-up read is in flight: it drops what was
        # dispatched meanwhile, and dispatch needs contiguous positions.
        if events[0].position == self.hub.position + 1:
            self.hub.dispatch(events, committed_at)
        elif events[-1].position > self.hub.position:
            self.wake()

    def wake(self) -> None:
        """Something was committed elsewhere: read the log."""
        if self._catching_up is not None:
            self._again = True
            return
        self._catching_up = asyncio.get_running_loop().create_task(self._catch_up())

    async def _catch_up(self) -> None:
        try:
            while True:
                self._again = False
                batch = await self.store.read_events(self.hub.position, READ_PAGE)
                # Re-check after the await: committed() may have moved on.
                fresh = [e for e in batch if e.position > self.hub.position]
                if fresh:
                    self.hub.dispatch(fresh, time.time())
                if len(batch) < READ_PAGE and not self._again:
                    return
        except TidingsError as exc:
            log.warning("feed: cannot read the log (%s); retrying on the next poll", exc)
        except Exception:
            log.exception("feed: catching up failed; retrying on the next poll")
        finally:
            self._catching_up = None

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.poll_s)
            delivered = self.hub.position  # committed before the query starts
            try:
                head = await self.store.head_position()
            except TidingsError:
                continue
            if head > self.hub.position:
                self.wake()
            elif head < delivered:
                self._rewound(head)

    def _rewound(self, head: int) -> None:
        """The log is shorter than what we delivered: the database was
        restored or failed over to a replica that lacked recent commits.
        Streams cannot trust their positions any more: reset them all."""
        log.error(
            "the log head moved back from %d to %d; resetting every stream", self.hub.position, head
        )
        self.hub.position = head
        self.hub.close_all(LOG_REWOUND)
