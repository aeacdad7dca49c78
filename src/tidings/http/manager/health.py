"""``/admin``: the landing page, the node's health."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from tidings.http.manager.render import render
from tidings.http.manager.session import AdminPage

router = APIRouter(include_in_schema=False)


@router.get("/admin")
async def health(request: Request, session: AdminPage) -> Response:
    return render(request, "health.html", {"title": "Health"}, session=session)
