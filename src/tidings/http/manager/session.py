"""Logging in and out of the Integration Manager, and the dependency every
admin page declares (``session: AdminPage``).

* ``GET /admin/login``: the form (one field, ``key``).
* ``POST /admin/login``: a good admin credential sets the session cookie
  (HttpOnly, SameSite=Strict, Path=/admin below the mount prefix, Secure
  over HTTPS, expiring with the session) and redirects (303) to ``next`` or ``/admin``; a bad
  one shows the form again with the reason and sets nothing.
* ``POST /admin/logout``: clears the cookie.

A page without a valid session redirects (303) to the login form. A
state-changing request (any method but GET/HEAD) must come from this
origin (``Origin``, else ``Sec-Fetch-Site``) and carry the session's CSRF
token, as the ``X-CSRF-Token`` header (htmx: set on ``<body>``) or the
``csrf`` form field; otherwise it is refused (403) before any work.
"""

from __future__ import annotations

import time
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from tidings.errors import Forbidden, Unauthorized
from tidings.http.events import node
from tidings.http.manager.forms import field_text
from tidings.http.manager.render import (
    ADMIN,
    LOGIN,
    CsrfRefused,
    LoginRequired,
    redirect,
    render,
)
from tidings.http.prefix import under_root
from tidings.services.sessions import AdminSession

COOKIE = "tidings_admin"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf"
SAFE_METHODS = frozenset({"GET", "HEAD"})
MAX_KEY_CHARS = 4096

router = APIRouter(include_in_schema=False)


async def admin_session(request: Request) -> AdminSession:
    """The caller's admin session (else :class:`LoginRequired`), with the
    CSRF and origin checks done for state-changing methods."""
    token = request.cookies.get(COOKIE)
    if not token:
        raise LoginRequired()
    try:
        session = await node(request).sessions.check(token)
    except (Unauthorized, Forbidden):
        raise LoginRequired() from None
    request.state.admin_session = session
    if request.method not in SAFE_METHODS:
        same_origin(request)
        given = request.headers.get(CSRF_HEADER)
        if given is None and _is_form(request):
            given = field_text((await request.form()).get(CSRF_FIELD)) or None
        if not node(request).sessions.csrf_holds(session, given):
            raise CsrfRefused(
                "The form's CSRF token is missing or belongs to another session:"
                " reload the page and try again."
            )
    return session


AdminPage = Annotated[AdminSession, Depends(admin_session)]
"""Declare ``session: AdminPage`` on every admin route."""


def same_origin(request: Request) -> None:
    """Refuse a request another site's page made (CSRF, login CSRF)."""
    origin = request.headers.get("origin")
    if origin is not None:
        mine = f"{request.url.scheme}://{request.url.netloc}"
        if origin != mine:
            raise CsrfRefused(f"The request came from another origin ({origin}).")
    elif request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        raise CsrfRefused("The request came from another site.")


@router.get(LOGIN)
async def login_form(request: Request, next: str = ADMIN) -> Response:
    token = request.cookies.get(COOKIE)
    if token:
        try:
            await node(request).sessions.check(token)
            return redirect(request, _local(next))
        except (Unauthorized, Forbidden):
            pass
    return _login_page(request, next=next)


@router.post(LOGIN)
async def login(request: Request) -> Response:
    same_origin(request)
    form = await request.form()
    key = field_text(form.get("key"))
    target = _local(field_text(form.get("next")) or ADMIN)
    if not key.strip() or len(key) > MAX_KEY_CHARS:
        return _login_page(request, next=target, error="Enter the admin key or an admin API key.")
    try:
        token, session = await node(request).sessions.open(key)
    except (Unauthorized, Forbidden) as exc:
        return _login_page(request, next=target, error=_refusal(exc))
    response = redirect(request, target)
    response.set_cookie(
        COOKIE,
        token,
        max_age=max(1, int(session.expires_at - time.time())),
        path=under_root(request, ADMIN),  # the browser sends it to the admin pages only
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )
    return response


@router.post("/admin/logout")
async def logout(request: Request, session: AdminPage) -> Response:
    response = redirect(request, LOGIN)
    response.delete_cookie(
        COOKIE,
        path=under_root(request, ADMIN),
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )
    return response


def _login_page(request: Request, *, next: str, error: str | None = None) -> Response:
    return render(
        request,
        "login.html",
        {"next": _local(next), "error": error},
        session=None,
        status=401 if error else 200,
    )


def _refusal(exc: Exception) -> str:
    if isinstance(exc, Forbidden):
        return "This key may not administer Tidings: it needs the admin scope."
    return "This key is not valid (unknown, revoked or expired)."


def _local(target: str) -> str:
    """``target`` if it is a page of the admin UI, else ``/admin`` (no open
    redirect to another site)."""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not (target == ADMIN or target.startswith(ADMIN + "/")):
        return ADMIN
    return target


def _is_form(request: Request) -> bool:
    kind = request.headers.get("content-type", "")
    return kind.startswith(("application/x-www-form-urlencoded", "multipart/form-data"))
