"""Operations endpoints: liveness, readiness and Prometheus metrics
(what they contain: :mod:`tidings.http.metrics`).

``/readyz`` answers 503 while the node is starting, while the database does
not answer, or while one of its supervised background tasks is dead (named
in ``tasks``). ``/metrics`` is open unless ``metrics_token`` is set; then it
needs ``Authorization: Bearer <token>`` (compared in constant time) and
answers a 401 problem otherwise.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.responses import Response

from tidings.errors import TidingsError, Unavailable
from tidings.http.events import json_response, node
from tidings.http.metrics import Metrics, check_metrics_token
from tidings.http.models import answers
from tidings.http.models.ops import Health, NotReady, Ready

router = APIRouter(tags=["operations"])


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


@router.get("/metrics", summary="Prometheus metrics (Bearer metrics token when one is set)")
async def metrics(request: Request) -> Response:
    check_metrics_token(node(request).settings.metrics_token, request.headers.get("authorization"))
    metrics: Metrics = request.app.state.metrics
    return Response(await metrics.render(), media_type=CONTENT_TYPE_LATEST)
