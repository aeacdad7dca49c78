"""``/admin``: the landing page, the node's health (``services/health.py``).

* ``GET /admin``: stat tiles, readiness dots, the processes and the charts.
* ``GET /admin/health/panel``: the tiles, dots and processes as an htmx
  fragment (the page polls it every 2 s).
* ``GET /admin/health/series``: the same figures and the charts' series as
  JSON (``static/admin/health.js`` polls it every 2 s).

A tenant-bound session gets readiness and its own tenant's figures only.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from tidings.http.events import json_response, node
from tidings.http.manager.render import render
from tidings.http.manager.session import AdminPage

router = APIRouter(include_in_schema=False)
NO_STORE = {"Cache-Control": "no-store"}


@router.get("/admin")
async def health(request: Request, session: AdminPage) -> Response:
    overview = await node(request).health.overview(session.principal)
    return render(request, "health.html", _context(overview), session=session)


@router.get("/admin/health/panel")
async def panel(request: Request, session: AdminPage) -> Response:
    overview = await node(request).health.overview(session.principal)
    return render(request, "_health_panel.html", _context(overview), session=session)


@router.get("/admin/health/series")
async def series(request: Request, session: AdminPage) -> Response:
    overview = await node(request).health.overview(session.principal)
    return json_response(overview, headers=NO_STORE)


def _context(overview: dict[str, Any]) -> dict[str, Any]:
    return {
        "title": "Health",
        "h": overview,
        "tenant_view": overview["scope"] == "tenant",
        "iso": _iso,
    }


def _iso(epoch: float) -> str:
    """A timestamp for ``<time datetime=... data-local>``."""
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")
