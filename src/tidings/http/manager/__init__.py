"""The Integration Manager: the operators' web UI at ``/admin`` (seed 001),
server-rendered with Jinja2 and htmx over the services layer, plus the
front door at ``/``.

Every page needs an admin session (:mod:`.session`); every state-changing
request carries the session's CSRF token and a same-origin ``Origin``.
Pages carry no inline script or style (strict Content-Security-Policy)."""

from __future__ import annotations

from fastapi import FastAPI

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
from tidings.http.manager.render import install_handlers

PAGE_MODULES = (front, session, health, catalog, rules, log, jobs, tenants, integrations)


def install(api: FastAPI) -> None:
    """Add the admin pages and their error handlers to ``api``."""
    install_handlers(api)
    for module in PAGE_MODULES:
        api.include_router(module.router)
