"""The node's health for the Integration Manager's landing page.

Three kinds of figures, each with its own cost:

* **Rates of this process** (connections, published/s, delivered/s,
  delivery latency p50/p95): a sampler reads the node's in-memory counters
  once a second (``Counters``, no database, nothing per event) into a ring
  of the last :data:`HISTORY_S` seconds. Delivery latencies are drained
  from ``hub.stats.latencies``, the sampler's own share (``/metrics``
  reads the hub's cumulative histogram instead, so neither takes from
  the other).
* **Every process on the database** (PostgreSQL, several ``tidings
  serve``): every :data:`ANNOUNCE_S` seconds each process sends a small
  summary of its last interval over the existing control channel
  (``pg_notify``: a handful of tiny messages per process per minute, no
  table, no migration); every process keeps the summaries it hears for
  :data:`HISTORY_S` seconds. A process that stops simply stops being heard.
* **Database figures** (queue depth and lag, dead letters, storage size,
  the log head, the database ping): queried only when someone asks, and
  cached for :data:`FIGURES_TTL_S` seconds per scope, so any number of open
  pages costs at most one round of small indexed queries per scope every
  two seconds.

A tenant-bound admin sees readiness and its own tenant's figures only
(pending and dead jobs, lag, its log head, its connections): never the
node-wide rates, processes or storage.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from tidings.errors import TidingsError
from tidings.services.access import authorize
from tidings.services.auth import Principal
from tidings.services.ports import Control
from tidings.store.base import JobFilter, LogQuery, Store
from tidings.supervision import Supervisor

log = logging.getLogger("tidings.health")

SAMPLE_S = 1.0  # the sampler's period (in-memory counters only)
ANNOUNCE_S = 10.0  # how often a process tells the others its figures
HISTORY_S = 300.0  # how far back the charts reach
FIGURES_TTL_S = 2.0  # database figures are shared by every viewer for this long
OVERVIEW_TTL_S = 1.0  # an overview serves every viewer of its scope this long (one sample)
SMTP_CHECK_TTL_S = 30.0  # a connect check of the SMTP server, at most this often
SMTP_TIMEOUT_S = 2.0
MAX_LATENCIES = 5_000  # per sample: enough for percentiles, bounded work
NODE_KIND = "node_health"  # the control message's kind
QUEUED = ("pending", "failed", "running")  # jobs not finished yet (failed: retry scheduled)


@dataclass(frozen=True, slots=True)
class Counters:
    """Cumulative readings of this process at one instant."""

    connections: int
    published: int  # events appended by this process
    delivered: int  # events handed to streams
    position: int  # the log position the hub has offered


@dataclass(frozen=True, slots=True)
class Point:
    """One sample: the rates over the second before ``at``."""

    at: float
    connections: int
    published_s: float
    delivered_s: float
    p50_ms: float | None  # None: nothing was delivered in the interval
    p95_ms: float | None


@dataclass(slots=True)
class NodeSeen:
    """Another (or this) process, as its announcements describe it."""

    node: str
    started: float
    last_seen: float
    runs_worker: bool
    summaries: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=32))

    def latest(self) -> dict[str, Any]:
        return self.summaries[-1] if self.summaries else {}


@dataclass(frozen=True, slots=True)
class Check:
    """One readiness line: ``state`` is ``ok``, ``warn`` or ``bad``."""

    name: str
    state: str
    detail: str


@dataclass(frozen=True, slots=True)
class Figures:
    """Database figures of one scope (None: every tenant)."""

    at: float
    queued: int  # jobs pending, failed (retry scheduled) or running, + events in the outbox
    waiting: int  # of which: appended events not yet made into jobs (the outbox)
    running: int
    dead: int
    lag_s: float | None  # age of the oldest due job (None: nothing due)
    log_head: int  # the scope's newest position
    storage_bytes: int | None  # node-wide scope only
    database: Check
    statuses: dict[str, int] = field(default_factory=dict)  # unfinished and dead jobs by status


def percentile(sorted_values: Sequence[float], fraction: float) -> float | None:
    """The nearest-rank percentile of ascending ``sorted_values``."""
    if not sorted_values:
        return None
    rank = max(0, min(len(sorted_values) - 1, math.ceil(fraction * len(sorted_values)) - 1))
    return sorted_values[rank]


class Sampler:
    """Turns cumulative counters into per-second points (pure: the clock and
    the readings are given, so it is tested with fakes)."""

    def __init__(self, history_s: float = HISTORY_S, every_s: float = SAMPLE_S) -> None:
        self.points: deque[Point] = deque(maxlen=max(1, int(history_s / every_s)))
        self._last: tuple[float, Counters] | None = None

    def add(self, at: float, counters: Counters, latencies: Sequence[float]) -> Point | None:
        """Record the readings at ``at``; the new point (None on the first
        reading, which only sets the baseline)."""
        last, self._last = self._last, (at, counters)
        if last is None or at <= last[0]:
            return None
        seconds = at - last[0]
        ordered = sorted(latencies[-MAX_LATENCIES:])
        point = Point(
            at=at,
            connections=counters.connections,
            published_s=max(0, counters.published - last[1].published) / seconds,
            delivered_s=max(0, counters.delivered - last[1].delivered) / seconds,
            p50_ms=_ms(percentile(ordered, 0.50)),
            p95_ms=_ms(percentile(ordered, 0.95)),
        )
        self.points.append(point)
        return point

    def since(self, at: float) -> list[Point]:
        return [p for p in self.points if p.at > at]


def summarize(points: Sequence[Point]) -> dict[str, Any]:
    """One process's figures over ``points`` (its last announce interval):
    mean rates, the worst p95, the latest connections."""
    if not points:
        return {"connections": 0, "published_s": 0.0, "delivered_s": 0.0, "p95_ms": None}
    p95s = [p.p95_ms for p in points if p.p95_ms is not None]
    return {
        "connections": points[-1].connections,
        "published_s": round(sum(p.published_s for p in points) / len(points), 2),
        "delivered_s": round(sum(p.delivered_s for p in points) / len(points), 2),
        "p95_ms": max(p95s) if p95s else None,
    }


class Health:
    """The health page's use cases.

    Given: ``store`` (ping, storage size, job counts, the log's head),
    ``counters`` (this process's in-memory readings), ``latencies`` (takes
    the hub's latency list, leaving it empty), ``announce`` (the node's control port),
    ``dead_tasks`` (the supervisor's dead background tasks, as ``/readyz``
    knows them), ``worker_tasks`` (the names of this process's worker tasks;
    empty: it runs none), ``smtp`` (host and port, or None: not configured)
    and ``connections_of`` (a tenant's open streams)."""

    def __init__(
        self,
        store: Store,
        *,
        node_id: str,
        counters: Callable[[], Counters],
        latencies: Callable[[], list[float]],
        announce: Control,
        dead_tasks: Callable[[], dict[str, str]],
        worker_tasks: Sequence[str],
        smtp: tuple[str, int] | None,
        connections_of: Callable[[str], int],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self.node_id = node_id
        self._counters = counters
        self._latencies = latencies
        self._announce = announce
        self._dead_tasks = dead_tasks
        self._worker_tasks = tuple(worker_tasks)
        self._smtp = smtp
        self._connections_of = connections_of
        self._clock = clock
        self.started = clock()
        self.sampler = Sampler()
        self.nodes: dict[str, NodeSeen] = {}
        self._figures: dict[str | None, Figures] = {}
        self._overviews: dict[str | None, dict[str, Any]] = {}
        self._queue_series: deque[tuple[float, int]] = deque(maxlen=int(HISTORY_S / 2))
        self._smtp_check: tuple[float, Check] | None = None
        self._last_announce = 0.0
        self._supervisor: Supervisor | None = None

    # -- background ---------------------------------------------------------

    def start(self, supervisor: Supervisor) -> None:
        self._supervisor = supervisor
        supervisor.spawn("health sampler", self._loop)

    async def stop(self) -> None:
        if self._supervisor is not None:
            await self._supervisor.stop("health sampler")
            self._supervisor = None

    async def _loop(self) -> None:
        self.sample()
        while True:
            await asyncio.sleep(SAMPLE_S)
            self.sample()
            if self._clock() - self._last_announce >= ANNOUNCE_S:
                await self.announce()

    def sample(self) -> Point | None:
        """Read the counters now (once a second, in memory only)."""
        return self.sampler.add(self._clock(), self._counters(), self._latencies())

    async def announce(self) -> None:
        """Tell every process (this one included) this one's last interval."""
        now = self._clock()
        summary = summarize(self.sampler.since(now - ANNOUNCE_S))
        self._last_announce = now
        try:
            await self._announce(
                NODE_KIND,
                node=self.node_id,
                started=self.started,
                at=now,
                worker=bool(self._worker_tasks),
                position=self._counters().position,
                **summary,
            )
        except TidingsError as exc:  # the channel is down: the next one may pass
            log.warning("health announcement failed: %s", exc)

    def heard(self, message: dict[str, Any]) -> None:
        """A process's announcement (a control message of :data:`NODE_KIND`)."""
        node, at = message.get("node"), message.get("at")
        if not isinstance(node, str) or not isinstance(at, int | float):
            return
        seen = self.nodes.get(node)
        if seen is None:
            seen = self.nodes[node] = NodeSeen(
                node=node,
                started=float(message.get("started") or at),
                last_seen=float(at),
                runs_worker=bool(message.get("worker")),
            )
        seen.last_seen = max(seen.last_seen, float(at))
        seen.runs_worker = bool(message.get("worker"))
        seen.summaries.append({k: message.get(k) for k in _SUMMARY_KEYS} | {"at": float(at)})
        horizon = self._clock() - HISTORY_S
        for gone in [n for n, s in self.nodes.items() if s.last_seen < horizon]:
            del self.nodes[gone]

    # -- use cases ------------------------------------------------------------

    async def overview(self, principal: Principal) -> dict[str, Any]:
        """What the landing page shows ``principal``: readiness, figures
        (its tenant's when it is tenant-bound) and, for a global admin, the
        series of the charts and the processes. JSON-ready."""
        authorize(principal, "health.read", scoped=False)
        tenant = principal.tenant_id
        cached = self._overviews.get(tenant)
        if cached is not None and self._clock() - cached["now"] < OVERVIEW_TTL_S:
            return cached  # the same for every viewer of the scope: no sample is newer
        result = await self._overview(tenant)
        self._overviews[tenant] = result
        return result

    async def _overview(self, tenant: str | None) -> dict[str, Any]:
        figures = await self.figures(tenant)
        result: dict[str, Any] = {
            "now": self._clock(),
            "scope": "node" if tenant is None else "tenant",
            "tenant": tenant,
            "node": self.node_id,
            "started": self.started,
            "readiness": [asdict(c) for c in await self.readiness(figures)],
            "figures": asdict(figures),
        }
        if tenant is not None:
            result["connections"] = self._connections_of(tenant)
            return result
        latest = self.sampler.points[-1] if self.sampler.points else None
        result["now_rates"] = asdict(latest) if latest is not None else None
        result["series"] = self._series()
        result["nodes"] = self._nodes()
        return result

    async def figures(self, tenant_id: str | None) -> Figures:
        """The database figures of a scope, at most :data:`FIGURES_TTL_S` old."""
        now = self._clock()
        cached = self._figures.get(tenant_id)
        if cached is not None and now - cached.at < FIGURES_TTL_S:
            return cached
        figures = await self._read_figures(tenant_id, now)
        self._figures[tenant_id] = figures
        if tenant_id is None and figures.database.state == "ok":
            self._queue_series.append((now, figures.queued))
        return figures

    async def readiness(self, figures: Figures) -> list[Check]:
        """Database, workers and SMTP, as dots."""
        return [figures.database, self._workers(), await self._smtp_state()]

    # -- helpers ------------------------------------------------------------

    async def _read_figures(self, tenant_id: str | None, now: float) -> Figures:
        scope = None if tenant_id is None else [tenant_id]
        started = time.perf_counter()
        try:
            await self._store.ping()
            ping_ms = (time.perf_counter() - started) * 1000
            counts = await self._store.jobs.count_jobs(
                JobFilter(tenant_ids=scope, statuses=(*QUEUED, "dead"))
            )
            waiting, due = await self._store.jobs.backlog(now, scope)
            head = await self._log_head(tenant_id)
            size = await self._store.storage_bytes() if tenant_id is None else None
        except TidingsError as exc:
            database = Check("Database", "bad", f"not answering: {exc}")
            return Figures(now, 0, 0, 0, 0, None, 0, None, database)
        return Figures(
            at=now,
            queued=sum(counts.get(s, 0) for s in QUEUED) + waiting,
            waiting=waiting,
            running=counts.get("running", 0),
            dead=counts.get("dead", 0),
            lag_s=None if due is None else max(0.0, now - due),
            log_head=head,
            storage_bytes=size,
            database=Check("Database", "ok", f"answers in {ping_ms:.1f} ms"),
            statuses={status: counts.get(status, 0) for status in (*QUEUED, "dead")},
        )

    async def _log_head(self, tenant_id: str | None) -> int:
        if tenant_id is None:
            return max(self._counters().position, await self._store.head_position())
        newest = await self._store.query_events(
            LogQuery(tenant_ids=[tenant_id], limit=1, newest_first=True)
        )
        return newest[0].position if newest else 0

    def _workers(self) -> Check:
        dead = self._dead_tasks()
        if not self._worker_tasks:
            return Check("Workers", "warn", "this process runs no worker (run_jobs is off)")
        stopped = sorted(name for name in self._worker_tasks if name in dead)
        if stopped:
            return Check("Workers", "bad", f"dead: {', '.join(stopped)}")
        others = sorted(set(dead) - set(self._worker_tasks))
        if others:
            return Check("Workers", "warn", f"worker alive; dead tasks: {', '.join(others)}")
        return Check("Workers", "ok", "this process runs a worker; every task alive")

    async def _smtp_state(self) -> Check:
        if self._smtp is None:
            return Check("SMTP", "warn", "not configured: send_email jobs cannot run")
        now = self._clock()
        if self._smtp_check is not None and now - self._smtp_check[0] < SMTP_CHECK_TTL_S:
            return self._smtp_check[1]
        host, port = self._smtp
        try:
            async with asyncio.timeout(SMTP_TIMEOUT_S):
                _reader, writer = await asyncio.open_connection(host, port)
            writer.close()
            check = Check("SMTP", "ok", f"{host}:{port} accepts connections")
        except (OSError, TimeoutError) as exc:
            check = Check("SMTP", "bad", f"{host}:{port} unreachable ({type(exc).__name__})")
        self._smtp_check = (now, check)
        return check

    def _series(self) -> dict[str, list[Any]]:
        points = list(self.sampler.points)
        return {
            "at": [round(p.at, 3) for p in points],
            "connections": [p.connections for p in points],
            "published_s": [round(p.published_s, 2) for p in points],
            "delivered_s": [round(p.delivered_s, 2) for p in points],
            "p50_ms": [_round(p.p50_ms) for p in points],
            "p95_ms": [_round(p.p95_ms) for p in points],
            "queue_at": [round(at, 3) for at, _ in self._queue_series],
            "queue": [depth for _, depth in self._queue_series],
        }

    def _nodes(self) -> list[dict[str, Any]]:
        now = self._clock()
        rows = []
        for seen in sorted(self.nodes.values(), key=lambda s: s.started):
            latest = seen.latest()
            rows.append(
                {
                    "node": seen.node,
                    "this": seen.node == self.node_id,
                    "started": seen.started,
                    "last_seen": seen.last_seen,
                    "stale": now - seen.last_seen > 3 * ANNOUNCE_S,
                    "worker": seen.runs_worker,
                    **{k: latest.get(k) for k in _SUMMARY_KEYS},
                    "at": [s["at"] for s in seen.summaries],
                    "published_series": [s.get("published_s") for s in seen.summaries],
                }
            )
        return rows


_SUMMARY_KEYS = ("connections", "published_s", "delivered_s", "p95_ms", "position")


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
