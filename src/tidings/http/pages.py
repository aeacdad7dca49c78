"""Browser pages and their static files: ``/static/*`` (``tidings.js`` and
the pages' scripts and styles) and ``GET /live``, a live list of the events
the holder of a user token may see.

Pages carry no inline script or style, so they are served with a strict
Content-Security-Policy; the token never reaches the server in a page
request (it travels in the address fragment or a form field, and only in
``Authorization`` headers of ticket requests).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from tidings import __version__
from tidings.http.prefix import root_path

PACKAGE = Path(__file__).resolve().parent.parent
STATIC_DIR = PACKAGE / "static"
STATIC_PATH = "/static"
templates = Jinja2Templates(directory=PACKAGE / "templates")

PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}

# Media types by file name ending that the platform's table may lack or get
# wrong (Debian's /etc/mime.types maps ".ts" to Qt Linguist): the browser
# client's module must be JavaScript (RFC 9239) or browsers refuse to run it.
MEDIA_TYPES = {
    ".mjs": "text/javascript; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".d.ts": "text/typescript; charset=utf-8",
}

router = APIRouter(include_in_schema=False)


class Static(StaticFiles):
    """``StaticFiles`` with :data:`MEDIA_TYPES` taking precedence over the
    platform's table."""

    def file_response(self, full_path: Any, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(full_path, *args, **kwargs)
        name = os.fspath(full_path)
        for ending, media_type in MEDIA_TYPES.items():
            if name.endswith(ending) and response.status_code != 304:
                response.headers["content-type"] = media_type
        return response


@router.get("/live")
async def live(request: Request) -> Response:
    """The live event list (token from ``#token=...`` or the form); its
    script connects below the mount prefix (``data-hub`` on ``<body>``)."""
    root = root_path(request.scope)
    return templates.TemplateResponse(
        request,
        "live.html",
        {"root": root, "static": root + STATIC_PATH, "version": __version__},
        headers=PAGE_HEADERS,
    )


def install(api: FastAPI) -> None:
    """Add the pages and mount ``/static``."""
    api.include_router(router)
    api.mount(STATIC_PATH, Static(directory=STATIC_DIR), name="static")
