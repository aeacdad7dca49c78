"""The health service with fakes of its ports (a store, counters, a
clock): the sampler's rates and percentiles, process announcements, the 2 s cache of the
database figures, readiness, and the tenant-bound view."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Sequence
from typing import Any

import pytest

from tidings.errors import Forbidden, Unavailable
from tidings.services.auth import Principal
from tidings.services.health import (
    ANNOUNCE_S,
    FIGURES_TTL_S,
    HISTORY_S,
    NODE_KIND,
    OVERVIEW_TTL_S,
    Counters,
    Health,
    Point,
    Sampler,
    percentile,
    summarize,
)
from tidings.store.base import JobFilter, LogQuery

OPERATOR = Principal(kind="admin", scopes=frozenset({"admin", "publish"}))
TENANT_ADMIN = Principal(kind="key", tenant_id="t1", scopes=frozenset({"admin"}), key_id="k1")
PUBLISHER = Principal(kind="key", tenant_id="t1", scopes=frozenset({"publish"}), key_id="k2")


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class FakeEvent:
    def __init__(self, position: int) -> None:
        self.position = position


class FakeJobs:
    def __init__(self) -> None:
        self.counts = {"pending": 4, "failed": 1, "running": 2, "dead": 3}
        self.waiting = 5
        self.oldest: float | None = 970.0
        self.queries: list[JobFilter] = []

    async def count_jobs(self, query: JobFilter) -> dict[str, int]:
        self.queries.append(query)
        return {s: n for s, n in self.counts.items() if s in query.statuses}

    async def backlog(
        self, now: float, tenant_ids: Sequence[str] | None
    ) -> tuple[int, float | None]:
        return self.waiting, self.oldest


class FakeStore:
    def __init__(self) -> None:
        self.jobs = FakeJobs()
        self.down = False
        self.pings = 0
        self.log_queries: list[LogQuery] = []

    async def ping(self) -> None:
        self.pings += 1
        if self.down:
            raise Unavailable("database unavailable: OSError")

    async def storage_bytes(self) -> int:
        return 123_456

    async def head_position(self) -> int:
        return 42

    async def query_events(self, query: LogQuery) -> list[FakeEvent]:
        self.log_queries.append(query)
        return [FakeEvent(17)]


class World:
    """A health service over fakes; ``counters`` and ``latencies`` are the
    node's readings, changed by the test."""

    def __init__(self, *, worker: bool = True, smtp: tuple[str, int] | None = None) -> None:
        self.clock = Clock()
        self.store = FakeStore()
        self.counters = Counters(connections=0, published=0, delivered=0, position=0)
        self.latencies: list[float] = []  # the hub's list
        self.dead: dict[str, str] = {}
        self.sent: list[dict[str, Any]] = []
        self.health = Health(
            self.store,  # type: ignore[arg-type]
            node_id="n1",
            counters=lambda: self.counters,
            latencies=self.drain,
            announce=self.announce,
            dead_tasks=lambda: self.dead,
            worker_tasks=("worker.claim", "worker.flush") if worker else (),
            smtp=smtp,
            connections_of=lambda tenant: 7 if tenant == "t1" else 0,
            clock=self.clock,
        )

    def drain(self) -> list[float]:
        taken, self.latencies = self.latencies, []
        return taken

    async def announce(self, kind: str, **fields: Any) -> None:
        message = {"kind": kind, **fields}
        self.sent.append(message)
        self.health.heard(message)  # the control channel delivers to the sender too

    def tick(self, published: int = 0, delivered: int = 0, connections: int = 0) -> None:
        c = self.counters
        self.counters = Counters(
            connections=connections,
            published=c.published + published,
            delivered=c.delivered + delivered,
            position=c.position + published,
        )
        self.clock.now += 1
        self.health.sample()


def test_the_sampler_turns_counters_into_rates_and_percentiles() -> None:
    sampler = Sampler(history_s=5)
    assert sampler.add(10.0, Counters(1, 100, 50, 100), []) is None  # the baseline
    point = sampler.add(12.0, Counters(3, 140, 90, 140), [0.001, 0.002, 0.003, 0.004, 0.100])
    assert point is not None
    assert point.published_s == 20.0 and point.delivered_s == 20.0 and point.connections == 3
    assert point.p50_ms == pytest.approx(3.0) and point.p95_ms == pytest.approx(100.0)
    quiet = sampler.add(13.0, Counters(3, 140, 90, 140), [])
    assert quiet is not None and quiet.p50_ms is None and quiet.published_s == 0
    for second in range(14, 30):
        sampler.add(float(second), Counters(0, 140, 90, 140), [])
    assert len(sampler.points) == 5  # bounded: the last history_s seconds


def test_percentiles_are_nearest_rank() -> None:
    values = sorted(float(v) for v in range(1, 101))
    assert percentile(values, 0.50) == 50.0
    assert percentile(values, 0.95) == 95.0
    assert percentile([7.0], 0.95) == 7.0
    assert percentile([], 0.5) is None


def test_a_summary_is_the_mean_rates_and_the_worst_p95() -> None:
    points = [Point(1, 2, 10, 20, 1.0, 5.0), Point(2, 3, 30, 40, None, None)]
    assert summarize(points) == {
        "connections": 3,
        "published_s": 20.0,
        "delivered_s": 30.0,
        "p95_ms": 5.0,
    }
    assert summarize([])["published_s"] == 0.0


async def test_a_global_admin_sees_rates_series_processes_and_the_node_figures() -> None:
    world = World()
    world.tick()  # the baseline
    world.tick()
    world.latencies.extend([0.002, 0.004])
    world.tick(published=30, delivered=60, connections=4)
    await world.health.announce()
    seen = await world.health.overview(OPERATOR)
    assert seen["scope"] == "node"
    assert seen["now_rates"]["published_s"] == 30 and seen["now_rates"]["connections"] == 4
    assert seen["series"]["published_s"] == [0.0, 30.0]
    assert seen["series"]["p95_ms"] == [None, 4.0]
    assert seen["series"]["queue"] == [12]  # 4 pending + 1 failed + 2 running + 5 in the outbox
    figures = seen["figures"]
    assert figures["dead"] == 3 and figures["waiting"] == 5 and figures["running"] == 2
    assert figures["lag_s"] == 33.0  # the oldest due work (at 970) seen at 1003
    assert figures["storage_bytes"] == 123_456 and figures["log_head"] == 42
    assert world.store.jobs.queries[0].tenant_ids is None
    (node,) = seen["nodes"]
    assert node["node"] == "n1" and node["this"] and node["published_s"] == 15.0
    assert world.sent[0]["kind"] == NODE_KIND and world.sent[0]["worker"] is True


async def test_a_tenant_bound_admin_sees_its_tenant_and_no_node_wide_figure() -> None:
    world = World()
    world.tick(published=5, connections=9)
    seen = await world.health.overview(TENANT_ADMIN)
    assert seen["scope"] == "tenant" and seen["tenant"] == "t1"
    assert {"series", "nodes", "now_rates"}.isdisjoint(seen)
    assert seen["connections"] == 7  # its tenant's streams, not the node's 9
    assert seen["figures"]["storage_bytes"] is None
    assert seen["figures"]["log_head"] == 17  # its newest event, not the log's head
    assert world.store.jobs.queries[-1].tenant_ids == ["t1"]
    assert world.store.log_queries[-1].tenant_ids == ["t1"]
    assert world.store.log_queries[-1].newest_first and world.store.log_queries[-1].limit == 1


async def test_only_admin_credentials_see_health() -> None:
    with pytest.raises(Forbidden):
        await World().health.overview(PUBLISHER)


async def test_database_figures_are_cached_per_scope_for_two_seconds() -> None:
    world = World()
    await world.health.overview(OPERATOR)
    await world.health.overview(OPERATOR)
    assert world.store.pings == 1
    await world.health.overview(TENANT_ADMIN)
    assert world.store.pings == 2  # another scope, its own figures
    world.clock.now += FIGURES_TTL_S
    await world.health.overview(OPERATOR)
    assert world.store.pings == 3


async def test_a_database_that_does_not_answer_is_a_red_dot() -> None:
    world = World()
    world.store.down = True
    seen = await world.health.overview(OPERATOR)
    database = seen["readiness"][0]
    assert database["name"] == "Database" and database["state"] == "bad"
    assert "not answering" in database["detail"]
    assert seen["series"]["queue"] == []  # no made-up zero on the chart


async def test_workers_readiness_from_the_supervisor() -> None:
    world = World()
    states = {c["name"]: c for c in (await world.health.overview(OPERATOR))["readiness"]}
    assert states["Workers"]["state"] == "ok"
    world.dead = {"worker.claim": "RuntimeError"}
    world.clock.now += FIGURES_TTL_S
    states = {c["name"]: c for c in (await world.health.overview(OPERATOR))["readiness"]}
    assert states["Workers"]["state"] == "bad" and "worker.claim" in states["Workers"]["detail"]
    world.dead = {"retention": "OSError"}
    world.clock.now += OVERVIEW_TTL_S
    states = {c["name"]: c for c in (await world.health.overview(OPERATOR))["readiness"]}
    assert states["Workers"]["state"] == "warn" and "retention" in states["Workers"]["detail"]
    idle = World(worker=False)
    states = {c["name"]: c for c in (await idle.health.overview(OPERATOR))["readiness"]}
    assert states["Workers"]["state"] == "warn" and "no worker" in states["Workers"]["detail"]


async def test_one_overview_serves_every_viewer_of_its_scope_for_a_sample() -> None:
    world = World()
    first = await world.health.overview(OPERATOR)
    world.dead = {"worker.claim": "RuntimeError"}
    assert await world.health.overview(OPERATOR) is first  # three browsers: one computation
    world.clock.now += OVERVIEW_TTL_S
    again = await world.health.overview(OPERATOR)
    assert again is not first and again["now"] == world.clock.now
    assert {c["name"]: c["state"] for c in again["readiness"]}["Workers"] == "bad"


async def test_smtp_readiness_is_a_cached_connect_check() -> None:
    assert (await World().health.readiness(await World().health.figures(None)))[2].state == "warn"
    listener = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        world = World(smtp=("127.0.0.1", port))
        figures = await world.health.figures(None)
        assert (await world.health.readiness(figures))[2].state == "ok"
    finally:
        listener.close()
        await listener.wait_closed()
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    world = World(smtp=("127.0.0.1", closed))
    figures = await world.health.figures(None)
    assert (await world.health.readiness(figures))[2].state == "bad"
    world.health._smtp = ("127.0.0.1", port)  # a change is seen only after the cache
    assert (await world.health.readiness(figures))[2].state == "bad"


def test_processes_heard_are_kept_marked_stale_then_forgotten() -> None:
    world = World()
    health = world.health
    health.heard(
        {
            "kind": NODE_KIND,
            "node": "n2",
            "started": 900.0,
            "at": 1000.0,
            "worker": False,
            "published_s": 3.0,
            "connections": 2,
        }
    )
    health.heard({"kind": NODE_KIND, "node": "n2", "at": 1010.0, "published_s": 4.0})
    health.heard({"kind": NODE_KIND, "node": None, "at": 1010.0})  # malformed: ignored
    (row,) = health._nodes()
    assert row["node"] == "n2" and not row["this"] and row["started"] == 900.0
    assert row["published_series"] == [3.0, 4.0] and row["published_s"] == 4.0
    assert not row["stale"]
    world.clock.now = 1010.0 + 3 * ANNOUNCE_S + 1
    assert health._nodes()[0]["stale"]
    world.clock.now = 1010.0 + HISTORY_S + 1
    health.heard({"kind": NODE_KIND, "node": "n3", "at": world.clock.now})
    assert [r["node"] for r in health._nodes()] == ["n3"]


async def test_a_failed_announcement_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    world = World()

    async def down(kind: str, **fields: Any) -> None:
        raise Unavailable("no LISTEN connection")

    world.health._announce = down
    await world.health.announce()
    assert "health announcement failed" in caplog.text
