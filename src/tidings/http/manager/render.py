"""Rendering the Integration Manager's pages: the shared layout's context
(navigation, the session, its CSRF token), the strict page headers, and
errors under ``/admin`` as HTML pages rather than problem documents."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import RedirectResponse, Response

from tidings import __version__
from tidings.errors import TidingsError
from tidings.http import problems
from tidings.http.pages import PAGE_HEADERS, STATIC_PATH, templates
from tidings.http.prefix import root_path, route_path
from tidings.services.sessions import AdminSession

ADMIN = "/admin"
LOGIN = "/admin/login"
# "no-referrer" (the /live page's) makes Chromium send "Origin: null" with
# form posts, and the origin check needs the real one.
ADMIN_HEADERS = {**PAGE_HEADERS, "Referrer-Policy": "same-origin"}

# (path, label) of the navigation bar, in the order an operator works.
NAV: tuple[tuple[str, str], ...] = (
    ("/admin", "Health"),
    ("/admin/catalog", "Catalog"),
    ("/admin/rules", "Rules"),
    ("/admin/log", "Live log"),
    ("/admin/jobs", "Failed work"),
    ("/admin/tenants", "Tenants"),
    ("/admin/integrations", "Integrations"),
)


class LoginRequired(Exception):
    """No valid admin session: the browser is sent to the login form."""


class CsrfRefused(Exception):
    """A state-changing request without this session's CSRF token, or from
    another origin: refused before anything is changed."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def render(
    request: Request,
    template: str,
    context: dict[str, Any],
    *,
    session: AdminSession | None,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    """``templates/admin/<template>`` with the layout's context. Templates
    write every URL of this app as ``{{ root }}/admin/...``: ``root`` is the
    mount prefix ("" at the root); ``path`` is the page's own path below it."""
    root = root_path(request.scope)
    base = {
        "root": root,
        "static": root + STATIC_PATH,
        "version": __version__,
        "nav": NAV,
        "path": route_path(request.scope),
        "session": session,
        "csrf": session.csrf if session is not None else "",
    }
    return templates.TemplateResponse(
        request,
        f"admin/{template}",
        {**base, **context},
        status_code=status,
        headers={**ADMIN_HEADERS, **(headers or {})},
    )


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def redirect(request: Request, to: str) -> Response:
    """303 to ``to`` (a path of this app, e.g. ``/admin/log``, sent below
    the mount prefix); for htmx requests an ``HX-Redirect`` (a whole-page
    navigation, not a fragment swap)."""
    to = root_path(request.scope) + to
    if is_htmx(request):
        return Response(status_code=204, headers={"HX-Redirect": to})
    return RedirectResponse(to, status_code=303)


def _admin(request: Request) -> bool:
    path = route_path(request.scope)
    return path == ADMIN or path.startswith(ADMIN + "/")


def _error_page(request: Request, status: int, title: str, detail: str) -> Response:
    return render(
        request,
        "error.html",
        {"title": title, "detail": detail, "status": status},
        session=getattr(request.state, "admin_session", None),
        status=status,
    )


def install_handlers(api: FastAPI) -> None:
    """Errors under ``/admin`` become pages; elsewhere they stay RFC 9457
    problems (these handlers replace problems.install's and delegate)."""

    @api.exception_handler(LoginRequired)
    async def _login(request: Request, _exc: LoginRequired) -> Response:
        target = route_path(request.scope)  # redirect() adds the prefix back
        if request.method == "GET" and target != LOGIN:
            query = request.url.query
            return redirect(request, f"{LOGIN}?next={target}{'?' + query if query else ''}")
        return redirect(request, LOGIN)

    @api.exception_handler(CsrfRefused)
    async def _csrf(request: Request, exc: CsrfRefused) -> Response:
        return _error_page(request, 403, "Request refused", exc.reason)

    @api.exception_handler(TidingsError)
    async def _tidings(request: Request, exc: TidingsError) -> Response:
        if not _admin(request):
            return problems.problem_response(exc, request.url.path)
        return _error_page(request, problems.body_status(exc), exc.title, str(exc))

    @api.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> Response:
        if not _admin(request):
            return await problems.http_problem(request, exc)
        return _error_page(request, exc.status_code, str(exc.detail), str(exc.detail))

    @api.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        if not _admin(request):
            return await problems.validation_problem(request, exc)
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
        return _error_page(request, 422, "Invalid input", f"{where}: {first.get('msg')}")
