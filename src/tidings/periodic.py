"""A background refresh: call a coroutine every few seconds until stopped,
logging (not raising) failures so a database outage only delays it.

No failure of one refresh ends the loop (a database error is a warning,
anything else an error with its traceback), and the loop itself runs
supervised under its name (``rules``, ``tenant catalog``, ``retention``),
so a refresh that dies anyway shows on ``/readyz`` and is restarted."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from tidings.errors import TidingsError
from tidings.supervision import Supervisor


class Periodic:
    def __init__(
        self, every_s: float, refresh: Callable[[], Awaitable[None]], log: logging.Logger, what: str
    ) -> None:
        self.every_s = every_s
        self.refresh = refresh
        self.log = log
        self.what = what
        self._supervisor: Supervisor | None = None

    def start(self, supervisor: Supervisor | None = None) -> None:
        if self.every_s > 0 and self._supervisor is None:
            self._supervisor = supervisor or Supervisor()
            self._supervisor.spawn(self.what, self._loop)

    async def stop(self) -> None:
        if self._supervisor is not None:
            await self._supervisor.stop(self.what)
            self._supervisor = None

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.every_s)
            try:
                await self.refresh()
            except TidingsError as exc:  # database down: keep what we have
                self.log.warning("%s refresh failed: %s", self.what, exc)
            except Exception:  # a bug in one refresh: the next one may do better
                self.log.exception("%s refresh failed", self.what)
