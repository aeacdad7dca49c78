"""A background refresh: call a coroutine every few seconds until stopped,
logging (not raising) failures so a database outage only delays it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from tidings.errors import TidingsError


class Periodic:
    def __init__(
        self, every_s: float, refresh: Callable[[], Awaitable[None]], log: logging.Logger, what: str
    ) -> None:
        self.every_s = every_s
        self.refresh = refresh
        self.log = log
        self.what = what
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.every_s > 0 and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.every_s)
            try:
                await self.refresh()
            except TidingsError as exc:  # database down: keep what we have
                self.log.warning("%s refresh failed: %s", self.what, exc)
