"""Operations endpoints: liveness, readiness and Prometheus metrics.

``/readyz`` answers 503 while the node is starting, while the database does
not answer, or while one of its supervised background tasks is dead (named
in ``tasks``). ``/metrics`` is open unless ``metrics_token`` is set; then it
needs ``Authorization: Bearer <token>`` (compared in constant time) and
answers a 401 problem otherwise.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.responses import Response

from tidings.errors import TidingsError, Unauthorized, Unavailable
from tidings.http.events import json_response, node
from tidings.http.models import answers
from tidings.http.models.ops import Health, NotReady, Ready
from tidings.node import Tidings

router = APIRouter(tags=["operations"])
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class HubCollector(Collector):
    """Reads the hub's plain counters at scrape time, so the hot path pays
    nothing for metrics."""

    def __init__(self, tidings: Tidings, latency: Histogram) -> None:
        self.tidings = tidings
        self.latency = latency

    def collect(self) -> Iterator[Metric]:
        hub, appender = self.tidings.hub, self.tidings.group_commit
        stats = hub.stats
        # Through the health service's tap, which shares them with the
        # health page's sampler: each reader gets every latency once.
        for seconds in self.tidings.health.latencies.for_metrics():
            self.latency.observe(seconds)
        yield GaugeMetricFamily(
            "tidings_connections", "Open SSE and WebSocket streams", value=len(hub)
        )
        yield GaugeMetricFamily(
            "tidings_log_position", "Last position offered to streams", value=hub.position
        )
        yield CounterMetricFamily(
            "tidings_events_published", "Events appended to the log", value=appender.appended
        )
        yield CounterMetricFamily(
            "tidings_commits", "Group commits to the log", value=appender.commits
        )
        yield CounterMetricFamily(
            "tidings_deliveries", "Events handed to streams", value=stats.delivered
        )
        yield CounterMetricFamily("tidings_streams_opened", "Streams opened", value=stats.opened)
        yield CounterMetricFamily("tidings_streams_closed", "Streams closed", value=stats.closed)
        yield CounterMetricFamily(
            "tidings_slow_disconnects",
            "Streams cut off as slow consumers (with a reset)",
            value=stats.slow_disconnects,
        )
        yield CounterMetricFamily(
            "tidings_dispatch_errors",
            "Events that could not be handed to live streams (they stay in the log)",
            value=stats.dispatch_errors,
        )
        restarts = CounterMetricFamily(
            "tidings_task_restarts",
            "Background tasks that died and were restarted, by task",
            labels=["task"],
        )
        for name, count in sorted(self.tidings.supervisor.restarts.items()):
            restarts.add_metric([name], count)
        yield restarts
        jobs = CounterMetricFamily(
            "tidings_job_attempts",
            "Job attempts this process ran, by the job's resulting status",
            labels=["status"],
        )
        worker = self.tidings.worker
        for status in ("succeeded", "failed", "dead", "abandoned"):
            jobs.add_metric([status], worker.stats[status] if worker is not None else 0)
        yield jobs


def metrics_registry(tidings: Tidings) -> CollectorRegistry:
    registry = CollectorRegistry()
    latency = Histogram(
        "tidings_delivery_latency_seconds",
        "Commit to hand-off to the streams, per dispatch",
        buckets=LATENCY_BUCKETS,
        registry=registry,
    )
    registry.register(HubCollector(tidings, latency))
    return registry


@router.get("/healthz", summary="Liveness", responses=answers(Health))
async def healthz() -> Response:
    return json_response({"status": "ok"})


@router.get(
    "/readyz",
    summary="Readiness: started and the database answers",
    responses={**answers(Ready), **answers(NotReady, 503, "not ready (starting, or no database)")},
)
async def readyz(request: Request) -> Response:
    tidings = node(request)
    dead = tidings.supervisor.dead()
    try:
        if not tidings.started:
            raise Unavailable("starting up")
        if dead:
            raise Unavailable(f"background task dead: {', '.join(sorted(dead))}")
        await tidings.history.ping()
    except TidingsError as exc:
        body = {"status": "unavailable", "detail": exc.detail, "tasks": dead}
        return json_response(body, 503, {"Retry-After": "1"})
    return json_response(
        {"status": "ready", "position": tidings.hub.position, "connections": len(tidings.hub)}
    )


def check_metrics_token(expected: str | None, authorization: str | None) -> None:
    """Nothing to check when no token is configured (unset or empty); else
    the request must carry exactly ``Bearer <token>``."""
    if not expected:
        return
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode(), expected.encode()
    ):
        raise Unauthorized("/metrics needs Authorization: Bearer <metrics token>")


@router.get("/metrics", summary="Prometheus metrics (Bearer metrics token when one is set)")
async def metrics(request: Request) -> Response:
    check_metrics_token(node(request).settings.metrics_token, request.headers.get("authorization"))
    registry: CollectorRegistry = request.app.state.metrics
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
