"""Prometheus metrics of one process (``/metrics``; ``tidings worker
--metrics-port``), named per the Prometheus conventions: ``_total``
counters, base units (``_seconds``, ``_bytes``), labels of bounded
cardinality only.

Where the figures come from, and what they cost:

* **Plain counters of the node** (hub, group commit, worker, supervisor,
  pools) and cumulative :class:`~tidings.core.histogram.Buckets` are read at
  scrape time by :class:`NodeCollector`: the hot paths pay an addition or
  a bisect, no lock, no list to drain. Every observation counts, and a
  scrape sees every one made before it.
* **Database figures** (jobs by status, the oldest due job's age, the log
  head) are the health service's, read before each scrape through
  :func:`render` (at most one round of small indexed queries per
  :data:`~tidings.services.health.FIGURES_TTL_S`, shared with the health
  page). They describe the whole database, so every process reports the
  same values: aggregate them with ``max``, not ``sum``.
* **HTTP requests** are counted by :class:`HttpMetrics`, which the front
  router calls once per request with the route *template* (never the raw
  path), through label children bound once per key.
* ``process_*`` and ``python_*``: prometheus-client's default collectors.

Per-tenant series exist only with ``metrics_per_tenant`` (off by default).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import math
import threading
from collections.abc import Iterable, Iterator, Mapping
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from tidings import __version__
from tidings.core.histogram import Buckets
from tidings.errors import Unauthorized
from tidings.node import Tidings
from tidings.services.health import Figures

log = logging.getLogger("tidings.metrics")

REQUEST_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
TRANSPORTS = ("sse", "ws")
ATTEMPT_OUTCOMES = ("succeeded", "failed", "abandoned")
JOB_STATUSES = ("pending", "failed", "running", "dead")
UNMATCHED = "unmatched"  # the route label of a request no route matched (a 404)
FIGURES_TIMEOUT_S = 5.0  # a scrape waits this long for the database figures, then goes without
SCRAPE_TIMEOUT_S = 10.0  # the worker's metrics server waits this long for the event loop


class HttpMetrics:
    """``tidings_http_requests_total{method,route,status}`` and
    ``tidings_http_request_duration_seconds{method,route}``.

    :meth:`observe` costs two dict lookups and two prometheus-client
    updates: label children are bound once per key and kept (keys are
    bounded: known methods, route templates, status codes)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "tidings_http_requests",
            "HTTP requests answered, by method, route template and status code"
            " (streams are counted when they end)",
            ["method", "route", "status"],
            registry=registry,
        )
        self.duration = Histogram(
            "tidings_http_request_duration_seconds",
            "Time from a request's arrival to its response's end, by method and route template"
            " (stream routes left out: a stream's lifetime is no response time)",
            ["method", "route"],
            buckets=REQUEST_BUCKETS_S,
            registry=registry,
        )
        self._counts: dict[tuple[str, str, int], Any] = {}
        self._durations: dict[tuple[str, str], Any] = {}

    def bind(self, method: str, route: str, status: int) -> None:
        """Create a series ahead of its first request (it shows as 0)."""
        self._count(method, route, status)
        self._duration(method, route)

    def observe(self, method: str, route: str, status: int, seconds: float | None) -> None:
        """One answered request; ``seconds`` None for a stream."""
        if method not in METHODS:
            method = "other"
        self._count(method, route, status).inc()
        if seconds is not None:
            self._duration(method, route).observe(seconds)

    def _count(self, method: str, route: str, status: int) -> Any:
        key = (method, route, status)
        child = self._counts.get(key)
        if child is None:
            child = self._counts[key] = self.requests.labels(method, route, str(status))
        return child

    def _duration(self, method: str, route: str) -> Any:
        key = (method, route)
        child = self._durations.get(key)
        if child is None:
            child = self._durations[key] = self.duration.labels(method, route)
        return child


class NodeCollector(Collector):
    """Reads the node's counters, pools and the last database figures at
    scrape time (see the module docstring)."""

    def __init__(self, tidings: Tidings) -> None:
        self.tidings = tidings
        self.figures: Figures | None = None  # set by render() before each scrape

    def collect(self) -> Iterator[Metric]:
        yield from self._build()
        yield from self._hub()
        yield from self._database()
        if self.figures is not None and self.figures.database.state != "ok":
            self.figures = None  # zeros from a database that did not answer would mislead
        yield from self._log()
        yield from self._jobs()
        yield from self._pools()
        yield from self._tasks()
        if self.tidings.settings.metrics_per_tenant:
            yield from self._tenants()

    def _build(self) -> Iterator[Metric]:
        info = GaugeMetricFamily(
            "tidings_build_info", "Always 1; the running version as a label", labels=["version"]
        )
        info.add_metric([__version__], 1)
        yield info

    def _hub(self) -> Iterator[Metric]:
        hub = self.tidings.hub
        stats = hub.stats
        connections = GaugeMetricFamily(
            "tidings_stream_connections", "Open event streams, by transport", labels=["transport"]
        )
        opened = CounterMetricFamily(
            "tidings_streams_opened", "Event streams opened, by transport", labels=["transport"]
        )
        closed = CounterMetricFamily(
            "tidings_streams_closed", "Event streams closed, by transport", labels=["transport"]
        )
        for transport in TRANSPORTS:
            began, ended = stats.opened_by.get(transport, 0), stats.closed_by.get(transport, 0)
            connections.add_metric([transport], began - ended)
            opened.add_metric([transport], began)
            closed.add_metric([transport], ended)
        yield from (connections, opened, closed)
        yield CounterMetricFamily(
            "tidings_deliveries",
            "Events handed to live streams (one per event and stream)",
            value=stats.delivered,
        )
        yield CounterMetricFamily(
            "tidings_stream_resets",
            "Streams cut off as slow consumers, with a reset naming their resume point",
            value=stats.slow_disconnects,
        )
        yield CounterMetricFamily(
            "tidings_dispatch_errors",
            "Events that could not be handed to live streams (they stay in the log)",
            value=stats.dispatch_errors,
        )
        yield histogram(
            "tidings_delivery_latency_seconds",
            "Time from an event's commit to its write to the live streams, per dispatch",
            {(): stats.latency},
        )

    def _database(self) -> Iterator[Metric]:
        figures = self.figures
        yield GaugeMetricFamily(
            "tidings_database_up",
            "1 when the database answered this scrape's queries, else 0",
            value=1 if figures is not None and figures.database.state == "ok" else 0,
        )

    def _log(self) -> Iterator[Metric]:
        appender, figures = self.tidings.group_commit, self.figures
        yield GaugeMetricFamily(
            "tidings_hub_position",
            "Last log position this process offered to its streams",
            value=self.tidings.hub.position,
        )
        yield GaugeMetricFamily(  # declared always; a sample only when the database answered
            "tidings_log_head_position",
            "Newest position in the log (the database's, all processes)",
            value=figures.log_head if figures is not None else None,
        )
        yield CounterMetricFamily(
            "tidings_events_published",
            "Events this process appended to the log",
            value=appender.appended,
        )
        yield CounterMetricFamily(
            "tidings_commits", "Group commits this process made to the log", value=appender.commits
        )
        yield histogram(
            "tidings_commit_batch_events",
            "Events per group commit (one transaction for a burst of publishes)",
            {(): appender.batch_sizes},
        )

    def _jobs(self) -> Iterator[Metric]:
        worker, figures = self.tidings.worker, self.figures
        attempts = CounterMetricFamily(
            "tidings_job_attempts",
            "Job attempts this process's worker finished, by outcome",
            labels=["outcome"],
        )
        for outcome in ATTEMPT_OUTCOMES:
            attempts.add_metric([outcome], worker.outcomes[outcome] if worker else 0)
        yield attempts
        yield CounterMetricFamily(
            "tidings_jobs_dead_lettered",
            "Jobs this process's worker gave up on (dead letters, kept for an operator)",
            value=worker.stats["dead"] if worker else 0,
        )
        webhooks = worker.webhook_seconds if worker else {}
        yield histogram(
            "tidings_webhook_duration_seconds",
            "Duration of webhook attempts this process ran, by rule id",
            {(rule,): buckets for rule, buckets in webhooks.items()},
            labels=("rule",),
        )
        # The database's figures: families declared always, samples only
        # when it answered this scrape (zeros would mislead).
        jobs = GaugeMetricFamily(
            "tidings_jobs",
            "Jobs in the database by status: pending, failed (retry scheduled), running, dead",
            labels=["status"],
        )
        if figures is not None:
            for status in JOB_STATUSES:
                jobs.add_metric([status], figures.statuses.get(status, 0))
        yield jobs
        yield GaugeMetricFamily(
            "tidings_job_outbox_events",
            "Appended events whose jobs the worker has not made yet (the outbox)",
            value=figures.waiting if figures is not None else None,
        )
        yield GaugeMetricFamily(
            "tidings_job_oldest_due_age_seconds",
            "How long the oldest job due to run has waited (0: none due)",
            value=(figures.lag_s or 0.0) if figures is not None else None,
        )

    def _pools(self) -> Iterator[Metric]:
        in_use = GaugeMetricFamily(
            "tidings_db_pool_connections_in_use",
            "Database connections checked out of the pool",
            labels=["pool"],
        )
        opened = GaugeMetricFamily(
            "tidings_db_pool_connections_open",
            "Database connections the pool holds, in use or idle",
            labels=["pool"],
        )
        capacity = GaugeMetricFamily(
            "tidings_db_pool_connections_max",
            "The most database connections the pool opens (size + overflow)",
            labels=["pool"],
        )
        for pool in self.tidings.pool_usage():
            in_use.add_metric([pool.name], pool.in_use)
            opened.add_metric([pool.name], pool.open)
            capacity.add_metric([pool.name], pool.capacity)
        yield from (in_use, opened, capacity)

    def _tasks(self) -> Iterator[Metric]:
        restarts = CounterMetricFamily(
            "tidings_task_restarts",
            "Background tasks that died and were restarted, by task",
            labels=["task"],
        )
        supervisor = self.tidings.supervisor
        for name in sorted({*supervisor.names(), *supervisor.restarts}):  # 0 until one dies
            restarts.add_metric([name], supervisor.restarts[name])
        yield restarts

    def _tenants(self) -> Iterator[Metric]:
        connections = GaugeMetricFamily(
            "tidings_tenant_stream_connections",
            "Open event streams per tenant (metrics_per_tenant; * is platform viewers)",
            labels=["tenant"],
        )
        for tenant, count in sorted(self.tidings.hub.per_tenant().items()):
            connections.add_metric([tenant], count)
        yield connections
        published = CounterMetricFamily(
            "tidings_tenant_events_published",
            "Events this process appended per tenant (metrics_per_tenant)",
            labels=["tenant"],
        )
        for tenant, count in sorted((self.tidings.group_commit.per_tenant or {}).items()):
            published.add_metric([tenant], count)
        yield published


def histogram(
    name: str,
    documentation: str,
    series: Mapping[tuple[str, ...], Buckets],
    labels: Iterable[str] = (),
) -> HistogramMetricFamily:
    """A histogram family from cumulative :class:`Buckets`, one per label values."""
    family = HistogramMetricFamily(name, documentation, labels=list(labels))
    for values, buckets in sorted(series.items()):
        cumulative = [(_le(bound), count) for bound, count in buckets.cumulative()]
        family.add_metric(list(values), cumulative, sum_value=buckets.total)
    return family


def _le(bound: float) -> str:
    return "+Inf" if math.isinf(bound) else repr(bound)


class Metrics:
    """A process's registry: the default process/platform/GC collectors and
    the node's collector (the HTTP server adds its :class:`HttpMetrics`)."""

    def __init__(self, tidings: Tidings) -> None:
        self.registry = CollectorRegistry()
        for default in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            self.registry.register(default)
        self.node = NodeCollector(tidings)
        self.registry.register(self.node)
        self._tidings = tidings

    async def render(self) -> bytes:
        """The exposition text, database figures at most a couple of seconds old."""
        self.node.figures = await self._figures()
        return generate_latest(self.registry)

    async def _figures(self) -> Figures | None:
        try:
            async with asyncio.timeout(FIGURES_TIMEOUT_S):
                figures = await self._tidings.health.figures(None)
        except TimeoutError:
            log.warning("database figures took over %ss; scraped without them", FIGURES_TIMEOUT_S)
            return None
        return figures


def check_metrics_token(expected: str | None, authorization: str | None) -> None:
    """Nothing to check when no token is configured (unset or empty); else
    the request must carry exactly ``Bearer <token>`` (compared in constant
    time)."""
    if not expected:
        return
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode(), expected.encode()
    ):
        raise Unauthorized("/metrics needs Authorization: Bearer <metrics token>")


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """No access line per scrape on stderr."""


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a thread per scrape, as prometheus-client's own server


def serve_metrics(
    metrics: Metrics,
    loop: asyncio.AbstractEventLoop,
    *,
    host: str,
    port: int,
    token: str | None,
) -> WSGIServer:
    """Serve ``GET /metrics`` on ``host:port`` from a thread (``tidings
    worker``, which has no HTTP server of its own): each scrape renders on
    ``loop``, the worker's event loop, like ``/metrics`` of ``tidings
    serve``, and needs the same bearer token when one is configured. The
    caller stops it with ``shutdown()``."""

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        if environ.get("PATH_INFO") not in ("/metrics", "/"):
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found: the metrics are at /metrics\n"]
        try:
            check_metrics_token(token, environ.get("HTTP_AUTHORIZATION"))
        except Unauthorized as exc:
            start_response("401 Unauthorized", [("Content-Type", "text/plain")])
            return [exc.detail.encode() + b"\n"]
        rendered = asyncio.run_coroutine_threadsafe(metrics.render(), loop)
        body = rendered.result(timeout=SCRAPE_TIMEOUT_S)
        start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST)])
        return [body]

    server = make_server(host, port, app, _ThreadingServer, handler_class=_Quiet)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server
