"""Operations endpoints: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.responses import Response

from tidings.errors import TidingsError, Unavailable
from tidings.http.events import json_response, node
from tidings.service import Tidings

router = APIRouter(tags=["operations"])
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class HubCollector(Collector):
    """Reads the hub's plain counters at scrape time, so the hot path pays
    nothing for metrics."""

    def __init__(self, tidings: Tidings, latency: Histogram) -> None:
        self.tidings = tidings
        self.latency = latency

    def collect(self) -> Iterator[Metric]:
        hub, appender = self.tidings.hub, self.tidings.appender
        stats = hub.stats
        pending, stats.latencies = stats.latencies, []
        for seconds in pending:
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


@router.get("/healthz", summary="Liveness")
async def healthz() -> Response:
    return json_response({"status": "ok"})


@router.get("/readyz", summary="Readiness: started and the database answers")
async def readyz(request: Request) -> Response:
    tidings = node(request)
    try:
        if not tidings.started:
            raise Unavailable("starting up")
        await tidings.store.ping()
    except TidingsError as exc:
        return json_response(
            {"status": "unavailable", "detail": exc.detail}, 503, {"Retry-After": "1"}
        )
    return json_response(
        {"status": "ready", "position": tidings.hub.position, "connections": len(tidings.hub)}
    )


@router.get("/metrics", summary="Prometheus metrics")
async def metrics(request: Request) -> Response:
    registry: CollectorRegistry = request.app.state.metrics
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
