"""The portal's pages: one HTML shell per page path, and the static files.

Every page path answers the same small shell (``templates/portal/
shell.html``) naming the page; the browser app (``static/app/main.js``,
plain ES modules importing the vendored React + React Query bundle)
renders the page for ``location.pathname``. Who may see what is decided by
the API the app calls, never by the shell: it holds no data, so it is the
same for every visitor and needs no login. The app sends a logged-out
visitor to ``/login`` and a logged-in one from ``/`` to their role's page.

The shells carry no inline script or style, so they are served with a
strict Content-Security-Policy; the access token lives in the tab's
``sessionStorage`` and travels only in ``Authorization`` headers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from tidings import __version__

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
STATIC_PATH = "/portal/static"
HUB_STATIC_PATH = "/static"  # the mounted hub's files: tidings.js
templates = Jinja2Templates(directory=HERE / "templates")

PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self' data:; font-src 'self'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}

# page path -> (page name the app renders, the tab's title)
PAGES: dict[str, tuple[str, str]] = {
    "/": ("home", "Home"),
    "/login": ("login", "Sign in"),
    "/tickets": ("tickets", "My tickets"),
    "/tickets/new": ("new-ticket", "Report a problem"),
    "/maintenance": ("maintenance", "Maintenance"),
    "/invoices": ("invoices", "Invoices"),
    "/jobs": ("jobs", "Jobs"),
    "/ops": ("ops", "Operations"),
}

router = APIRouter(include_in_schema=False)


def shell(request: Request, page: str, title: str) -> Response:
    """The page shell: the app's scripts and an empty root to render into."""
    return templates.TemplateResponse(
        request,
        "portal/shell.html",
        {
            "page": page,
            "title": title,
            "static": STATIC_PATH,
            "hub_static": HUB_STATIC_PATH,
            "version": __version__,
        },
        headers=PAGE_HEADERS,
    )


def page_route(page: str, title: str) -> Callable[[Request], Awaitable[Response]]:
    """The endpoint answering ``page``'s shell."""

    async def endpoint(request: Request) -> Response:
        return shell(request, page, title)

    endpoint.__name__ = f"page_{page.replace('-', '_')}"
    return endpoint


for _path, (_page, _title) in PAGES.items():
    router.add_api_route(_path, page_route(_page, _title), methods=["GET"])


@router.get("/tickets/{ticket_id}")
async def ticket_page(request: Request, ticket_id: str) -> Response:
    """One ticket: its state, the viewer's actions and its timeline (the id
    is read by the app from the path; an unknown one shows "not found")."""
    return shell(request, "ticket", "Ticket")


def install(app: FastAPI) -> None:
    """Add the page routes and mount ``/portal/static`` (call before the hub
    is mounted at the root, so these paths win)."""
    app.include_router(router)
    app.mount(STATIC_PATH, StaticFiles(directory=STATIC_DIR), name="portal-static")
