"""Supervised background tasks: no loop of a node dies silently.

Every long-lived loop of a node runs under its :class:`Supervisor`: the
appender, the feed's poller, the hub's heartbeat, the worker's claim and
flush loops, retention and the periodic refreshes (rules, tenant catalogs).

Policy: restart, for every task. A task that ends while it should be
running - it raised, returned, or was cancelled by anyone but its owner -
is at once logged (ERROR, with the traceback), listed by :meth:`dead` (so
``/readyz`` answers 503 naming it), counted in :attr:`restarts`, and
started again after a delay (``task_restart_s``, doubling up to
:data:`MAX_RESTART_S` while it keeps dying within :data:`STABLE_S` of its
start). Each loop keeps its state on its owner (the appender's queue, the
feed's position, the worker's unwritten results), so a fresh loop goes on
where the dead one stopped; exiting the process instead would drop every
tenant's open streams over one component's bug, and a crash loop would
still be visible on ``/readyz`` and in the log.

Stopping is explicit (:meth:`stop`, :meth:`stop_all`): a task stopped by
its owner is not a death.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from typing import Any

log = logging.getLogger("tidings.supervision")
MAX_RESTART_S = 30.0
STABLE_S = 60.0  # a task that ran this long before dying starts over at the first delay

Factory = Callable[[], Coroutine[Any, Any, None]]


class Supervisor:
    def __init__(self, restart_s: float = 1.0) -> None:
        self.restart_s = restart_s
        self.restarts: Counter[str] = Counter()
        self._factories: dict[str, Factory] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._started: dict[str, float] = {}
        self._delay: dict[str, float] = {}
        self._dead: dict[str, str] = {}  # name -> how it ended
        self._pending: dict[str, asyncio.TimerHandle] = {}

    def spawn(self, name: str, factory: Factory) -> asyncio.Task[None]:
        """Run ``factory()`` as the task ``name``, restarted whenever it ends."""
        self._factories[name] = factory
        return self._start(name)

    def names(self) -> list[str]:
        """Every task spawned (running, dead or stopped), sorted."""
        return sorted(self._factories)

    def task(self, name: str) -> asyncio.Task[None] | None:
        return self._tasks.get(name)

    def dead(self) -> dict[str, str]:
        """Tasks that ended unexpectedly and are not running again yet."""
        return dict(self._dead)

    def is_dead(self, name: str) -> bool:
        return name in self._dead

    async def stop(self, name: str) -> None:
        """Stop ``name`` for good (not a death): cancel it and wait."""
        self._factories.pop(name, None)
        self._dead.pop(name, None)
        pending = self._pending.pop(name, None)
        if pending is not None:
            pending.cancel()
        task = self._tasks.pop(name, None)
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def stop_all(self) -> None:
        for name in list(self._factories):
            await self.stop(name)

    def _start(self, name: str) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(self._factories[name](), name=name)
        self._tasks[name] = task
        self._started[name] = time.monotonic()
        self._dead.pop(name, None)
        task.add_done_callback(lambda done: self._ended(name, done))
        return task

    def _ended(self, name: str, task: asyncio.Task[None]) -> None:
        if self._tasks.get(name) is not task or name not in self._factories:
            return  # stopped by its owner, or already replaced
        error = None if task.cancelled() else task.exception()
        how = "cancelled" if task.cancelled() else repr(error) if error else "returned"
        ran = time.monotonic() - self._started[name]
        delay = self.restart_s
        if ran < STABLE_S:
            delay = min(self._delay.get(name, self.restart_s / 2) * 2, MAX_RESTART_S)
        self._delay[name] = delay
        self._dead[name] = how
        self.restarts[name] += 1
        log.error(
            "background task %s died (%s) after %.1fs; restarting in %.1fs",
            name,
            how,
            ran,
            delay,
            exc_info=error,
        )
        self._pending[name] = asyncio.get_running_loop().call_later(delay, self._restart, name)

    def _restart(self, name: str) -> None:
        self._pending.pop(name, None)
        if name in self._factories:
            log.warning("background task %s restarted", name)
            self._start(name)
