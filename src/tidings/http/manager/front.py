"""``/``: the front door, a small public page saying what this server is,
with links to the admin UI, the API documentation, the live page and the
operations endpoints (instead of a 404 problem). Not in the OpenAPI
document."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from tidings.http.manager.render import render

router = APIRouter(include_in_schema=False)

# (path, title, what it is), in the order a visitor looks for them.
LINKS: tuple[tuple[str, str, str], ...] = (
    ("/admin", "Integration Manager", "operators: rules, the event log, failed work, health"),
    ("/docs", "API documentation", "the HTTP API, with its OpenAPI document"),
    ("/live", "Live events", "a live list of the events a user token may see"),
    ("/healthz", "Liveness", "the process answers"),
    ("/readyz", "Readiness", "started, database answering, every task alive"),
    ("/metrics", "Metrics", "Prometheus text format"),
)


@router.get("/")
async def front_door(request: Request) -> Response:
    return render(request, "front.html", {"title": "Welcome", "links": LINKS}, session=None)
