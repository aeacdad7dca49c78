"""The Integration Manager: the operators' web UI at ``/admin`` (seed 001),
server-rendered with Jinja2 and htmx over the services layer, plus the
front door at ``/``.

Every page needs an admin session (:mod:`.session`); every state-changing
request carries the session's CSRF token and a same-origin ``Origin``.
Pages carry no inline script or style (strict Content-Security-Policy)."""

from __future__ import annotations

from fastapi import FastAPI

from tidings.http import problems
from tidings.http.manager import (
    catalog,
    front,
    health,
    integrations,
    jobs,
    log,
    rules,
    session,
    tenants,
)
from tidings.http.manager.render import ADMIN, install_handlers
from tidings.http.params import StrictBodies
from tidings.node import Tidings

PAGE_MODULES = (session, health, catalog, rules, log, jobs, tenants, integrations)


def build(tidings: Tidings) -> FastAPI:
    """The pages under ``/admin`` as an ASGI app of their own, beside the
    API's: the front router (:class:`tidings.http.app.TidingsApp`) sends
    them here by prefix, so an admin page's poll does not walk the API's
    routes and an API call does not walk the pages' (matching costs a few
    microseconds per route tried). No lifespan: the API's starts the node."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.state.tidings = tidings
    problems.install(app)
    install_handlers(app)  # after problems.install: errors become pages
    app.add_middleware(StrictBodies, limit=tidings.settings.max_api_body_bytes)
    for module in PAGE_MODULES:
        app.include_router(module.router)
    return app


def install_front(api: FastAPI) -> None:
    """The front door at ``/`` (a route of the API's app: it is outside ``/admin``)."""
    api.include_router(front.router)


def is_admin_path(path: str) -> bool:
    return path == ADMIN or path.startswith(ADMIN + "/")
