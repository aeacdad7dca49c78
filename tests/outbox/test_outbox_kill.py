"""kill -9 of a host process that writes through the outbox (the script
``tests/data/outbox_writer.py``): after commit before any relay, between
the relay's publish and its delete, and at random moments while it writes
and relays. A new process's relay then finishes: every committed event is
in the log exactly once, in commit order, and nothing uncommitted is.
Host and hub on SQLite, and on PostgreSQL."""

from __future__ import annotations

import asyncio
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from outbox_host import database, new_tenant, open_host, open_hub
from tidings.outbox import OutboxRelay, RelayStats
from tidings.store.base import LogQuery

WRITER = Path(__file__).resolve().parents[1] / "data" / "outbox_writer.py"
STEP_TIMEOUT_S = 120.0  # a cold start of the embedded hub under a loaded CI machine


@dataclass
class World:
    host_url: str
    hub_url: str
    tenant: str


@dataclass
class Recovered:
    log: list[tuple[str, str]]  # (entity id, event id) in log order
    tickets: list[int]  # the host's committed tickets
    pending: int  # outbox rows left
    stats: RelayStats


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def make_world(backend: str, folder: Path, request: pytest.FixtureRequest) -> World:
    """Fresh host and hub databases (schemas created) and a tenant, in ``folder``."""
    host_url = database(backend, folder, request, "host.db")
    hub_url = database(backend, folder, request, "hub.db")
    host = await open_host(host_url)
    await host.engine.dispose()
    hub = await open_hub(hub_url)
    try:
        tenant = await new_tenant(hub)
    finally:
        await hub.stop()
    return World(host_url, hub_url, tenant)


class Writer:
    """The writer script in its own process; ``committed`` maps ticket
    number -> event id for every commit it reported."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.committed: dict[int, str] = {}

    @classmethod
    async def start(cls, world: World, mode: str, count: int, batch: int, log: Path) -> Writer:
        with log.open("ab") as errors:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                str(WRITER),
                mode,
                world.host_url,
                world.hub_url,
                world.tenant,
                str(count),
                str(batch),
                stdout=asyncio.subprocess.PIPE,
                stderr=errors,
            )
        return cls(proc)

    async def until(self, prefix: str, log: Path) -> str:
        """Read lines until one starts with ``prefix`` (recording commits)."""
        assert self.proc.stdout is not None
        async with asyncio.timeout(STEP_TIMEOUT_S):
            while True:
                raw = await self.proc.stdout.readline()
                if not raw:
                    raise AssertionError(f"writer exited early: {tail(log)}")
                line = raw.decode().strip()
                if line.startswith("committed "):
                    _, n, event_id = line.split()
                    self.committed[int(n)] = event_id
                if line.startswith(prefix):
                    return line

    async def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        assert await self.proc.wait() == -signal.SIGKILL


def tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:]


async def recover(world: World) -> Recovered:
    """What a new process's relay leaves: it drains the outbox into the log."""
    host = await open_host(world.host_url, create=False)
    hub = await open_hub(world.hub_url)
    try:
        relay = OutboxRelay(host.engine, host.outbox, hub)
        await relay.drain()
        events = await hub.store.query_events(LogQuery(tenant_ids=[world.tenant], limit=100_000))
        async with host.engine.connect() as conn:
            tickets = await conn.execute(select(host.tickets.c.id).order_by(host.tickets.c.id))
            numbers = list(tickets.scalars())
            table = host.outbox.table
            pending = (await conn.execute(select(func.count()).select_from(table))).scalar_one()
    finally:
        await hub.stop()
        await host.engine.dispose()
    log = [(str(e.entity_id), e.id) for e in events]
    return Recovered(log, numbers, int(pending), relay.stats)


def expected_log(writer: Writer) -> list[tuple[str, str]]:
    return [(f"tk-{n}", writer.committed[n]) for n in sorted(writer.committed)]


async def test_killed_after_commit_before_any_relay(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    world = await make_world(backend, tmp_path, request)
    writer = await Writer.start(world, "commit", 23, 10, tmp_path / "writer.log")
    await writer.until("uncommitted", tmp_path / "writer.log")
    await writer.kill()
    assert len(writer.committed) == 23

    after = await recover(world)
    assert after.log == expected_log(writer)  # once each, in commit order
    assert after.tickets == sorted(writer.committed)  # the open transaction left nothing
    assert after.pending == 0 and after.stats.duplicates == 0


async def test_killed_between_publish_and_delete(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    world = await make_world(backend, tmp_path, request)
    writer = await Writer.start(world, "pause", 23, 10, tmp_path / "writer.log")
    assert await writer.until("published", tmp_path / "writer.log") == "published 10"
    await writer.kill()

    after = await recover(world)
    assert after.stats.duplicates == 10  # the killed relay's batch: in the log, rows not deleted
    assert after.stats.relayed == 13
    assert after.log == expected_log(writer)
    assert after.pending == 0


@settings(
    max_examples=5,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    commits_seen=st.integers(min_value=0, max_value=60),
    extra_ms=st.integers(min_value=0, max_value=80),
    batch=st.sampled_from([1, 3, 10, 64]),
)
def test_killed_at_random_moments_while_writing_and_relaying(
    backend: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    commits_seen: int,
    extra_ms: int,
    batch: int,
) -> None:
    folder = tmp_path / f"run-{commits_seen}-{extra_ms}-{batch}-{id(object())}"
    folder.mkdir()
    asyncio.run(live_run(backend, folder, request, commits_seen, extra_ms, batch))


async def live_run(
    backend: str,
    folder: Path,
    request: pytest.FixtureRequest,
    commits_seen: int,
    extra_ms: int,
    batch: int,
) -> None:
    world = await make_world(backend, folder, request)
    log = folder / "writer.log"
    writer = await Writer.start(world, "live", 7, batch, log)
    await writer.until("relaying", log)
    while len(writer.committed) < 7 + commits_seen:
        await writer.until("committed", log)
    await asyncio.sleep(extra_ms / 1000)
    await writer.kill()

    after = await recover(world)
    assert after.pending == 0
    # The host's committed tickets are the truth (a commit may land after its
    # last line was read): each has its event once, in commit order.
    assert [entity for entity, _ in after.log] == [f"tk-{n}" for n in after.tickets]
    assert set(writer.committed) <= set(after.tickets)
    reported = dict(after.log)
    assert all(reported[f"tk-{n}"] == event_id for n, event_id in writer.committed.items())
