"""``create_portal(settings)``: the portal's FastAPI app with the hub mounted.

The portal's own routes come first; the hub (``tidings.http.app``) is
mounted at the root after them, so one origin serves both: the portal's
``/api/auth``, ``/api/tickets``, ``/api/tenancies``, ``/api/finance``,
``/api/me`` and pages, and the hub's ``/api/events`` (SSE),
``/ws/events``, ``/api/notifications``, ``/admin`` and ``/docs``.
Starlette's Mount does not forward lifespan, so the portal's lifespan
(:func:`running`) holds the hub's ``lifespan()``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.routing import Mount

from tidings import TidingsApp, create_hub
from tidings.http import problems
from tidings.portal import api, pages, tables
from tidings.portal.accounts import Accounts, IdentitySync
from tidings.portal.database import create_tables, open_engine
from tidings.portal.events import PortalEvents
from tidings.portal.notifications import install_rules
from tidings.portal.settings import PortalSettings
from tidings.sdk import AsyncTidingsClient

log = logging.getLogger("tidings.portal")


@dataclass
class Portal:
    """What the routes share: settings, the database, the outbox, the hub."""

    settings: PortalSettings
    hub: TidingsApp
    events: PortalEvents
    accounts: Accounts
    hub_client: AsyncTidingsClient
    hub_http: httpx.AsyncClient  # the hub's admin HTTP API (rules), in-process

    @property
    def engine(self) -> AsyncEngine:
        return self.accounts.engine


def build_portal(settings: PortalSettings) -> Portal:
    hub = create_hub(settings.hub)
    # The admin calls (identity sync, rules) go to the hub in-process.
    transport = httpx.ASGITransport(app=hub)  # type: ignore[arg-type]
    hub_client = AsyncTidingsClient(
        "http://hub.internal", token=settings.admin_key, transport=transport
    )
    hub_http = httpx.AsyncClient(
        base_url="http://hub.internal",
        headers={"Authorization": f"Bearer {settings.admin_key}"},
        transport=transport,
    )
    engine = open_engine(settings.database_url)
    return Portal(
        settings=settings,
        hub=hub,
        events=PortalEvents(tables.metadata, hub.tidings),
        accounts=Accounts(engine, IdentitySync(hub_client)),
        hub_client=hub_client,
        hub_http=hub_http,
    )


@contextlib.asynccontextmanager
async def running(portal: Portal, *, seed: bool = False) -> AsyncIterator[Portal]:
    """The portal ready to serve for the block: the hub's node started
    (``hub.lifespan()``: Starlette's Mount does not forward lifespan), the
    tables, the hub's roles and rules, the outbox relay, and with ``seed``
    the demo's world. Everything is stopped in the reverse order."""
    async with portal.hub.lifespan():
        try:
            await create_tables(portal.engine)
            await portal.accounts.sync.roles()
            await portal.accounts.sync.ops_home()
            await install_rules(portal.hub_http)
            portal.events.start(portal.engine)
            if seed:
                from tidings.portal.seed import seed_demo

                await seed_demo(portal)
            yield portal
        finally:
            await portal.events.stop()
            await portal.hub_client.aclose()
            await portal.hub_http.aclose()
            await portal.engine.dispose()


def create_portal(settings: PortalSettings, *, seed: bool = False) -> FastAPI:
    portal = build_portal(settings)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        async with running(portal, seed=seed):
            yield

    app = FastAPI(
        title="Tidings portal (seed 004)",
        lifespan=lifespan,
        docs_url=None,  # /docs is the hub's
        redoc_url=None,
        openapi_url=None,
    )
    app.state.portal = portal
    problems.install(app)
    app.include_router(api.router)
    pages.install(app)  # the pages and /portal/static
    app.router.routes.append(Mount("/", app=portal.hub))  # type: ignore[arg-type]
    return app
