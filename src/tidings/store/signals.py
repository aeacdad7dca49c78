"""Cross-process signals: "the log moved" wake-ups and control messages
("user deleted", "roles changed") that every process must apply.

* :class:`LocalSignals` - one process (the SQLite default): control
  messages are applied at once; the log needs no wake-up (the feed hears
  this process's commits directly and polls for anything else).
* :class:`PostgresSignals` - one LISTEN connection per process, multiplexed
  over both channels (saq's ``ListenMultiplexer``). Log notifications are
  sent by the append transaction itself (``pg_notify`` at commit). A lost
  notification costs latency, never an event: after a reconnect the feed is
  woken to read the log, and it polls anyway.

Control messages reach every process; the sender recognizes its own (the
``origin`` field) because it applied them before sending.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any, Protocol

import orjson

from tidings.store.sql.postgres import CONTROL_CHANNEL, LOG_CHANNEL

log = logging.getLogger("tidings.signals")
# (new head position or -1: unknown, read the log; the committing process's origin)
LogHandler = Callable[[int, str], None]
ControlHandler = Callable[[dict[str, Any]], None]


class Signals(Protocol):
    async def start(self, on_log: LogHandler, on_control: ControlHandler) -> None: ...
    async def send_control(self, message: dict[str, Any]) -> None: ...
    async def stop(self) -> None: ...


class LocalSignals:
    def __init__(self) -> None:
        self._on_control: ControlHandler | None = None

    async def start(self, on_log: LogHandler, on_control: ControlHandler) -> None:
        self._on_control = on_control

    async def send_control(self, message: dict[str, Any]) -> None:
        if self._on_control is not None:
            self._on_control(message)

    async def stop(self) -> None:
        self._on_control = None


def asyncpg_dsn(url: str) -> str:
    """``postgresql+asyncpg://`` or ``postgres://`` -> a DSN asyncpg takes."""
    rest = url.split("://", 1)[1]
    return "postgresql://" + rest


class PostgresSignals:
    def __init__(self, url: str, *, reconnect_s: float = 1.0) -> None:
        self.dsn = asyncpg_dsn(url)
        self.reconnect_s = reconnect_s
        self._conn: Any = None
        self._task: asyncio.Task[None] | None = None
        self._on_log: LogHandler | None = None
        self._on_control: ControlHandler | None = None
        self.connected = asyncio.Event()

    async def start(self, on_log: LogHandler, on_control: ControlHandler) -> None:
        self._on_log, self._on_control = on_log, on_control
        self._task = asyncio.get_running_loop().create_task(self._supervise())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.connected.wait(), 10)

    async def _connect(self) -> None:
        import asyncpg

        conn = await asyncpg.connect(self.dsn, timeout=5)
        await conn.add_listener(LOG_CHANNEL, self._log_message)
        await conn.add_listener(CONTROL_CHANNEL, self._control_message)
        self._conn = conn

    async def _supervise(self) -> None:
        while True:
            try:
                if self._conn is None or self._conn.is_closed():
                    self.connected.clear()
                    await self._connect()
                    self.connected.set()
                    if self._on_log is not None:
                        self._on_log(-1, "")  # we may have missed notifications
                await asyncio.sleep(self.reconnect_s)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database is away: keep trying
                log.warning("LISTEN connection unavailable (%s); retrying", type(exc).__name__)
                self._conn = None
                await asyncio.sleep(self.reconnect_s)

    def _log_message(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        if self._on_log is not None:
            head, _, origin = payload.partition(" ")
            self._on_log(int(head) if head.isdigit() else -1, origin)

    def _control_message(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        if self._on_control is None:
            return
        try:
            message = orjson.loads(payload)
        except orjson.JSONDecodeError:
            log.warning("ignoring a malformed control message")
            return
        self._on_control(message)

    async def send_control(self, message: dict[str, Any]) -> None:
        payload = orjson.dumps(message).decode()
        if self._conn is not None and not self._conn.is_closed():
            try:
                await self._conn.execute("SELECT pg_notify($1, $2)", CONTROL_CHANNEL, payload)
                return
            except Exception as exc:
                log.warning("cannot broadcast a control message (%s)", type(exc).__name__)
        # Other processes miss it: their caches expire within cache_ttl_s,
        # and their streams re-check authorization when they reconnect.
        log.warning("control message %s not broadcast: no LISTEN connection", message.get("kind"))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._conn is not None and not self._conn.is_closed():
            with contextlib.suppress(Exception):
                await self._conn.close(timeout=2)
        self._conn = None
