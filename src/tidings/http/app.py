"""The ASGI application: FastAPI for the request/response API, and a thin
front router that sends stream requests straight to the raw stream
handlers (so they can write to uvicorn's transport directly)."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from tidings import __version__
from tidings.config import Settings
from tidings.http import (
    admin,
    apidoc,
    automation,
    catalog,
    entities,
    events,
    inbound,
    manager,
    notifications,
    ops,
    pages,
    problems,
    publish,
)
from tidings.http.metrics import HttpMetrics, Metrics
from tidings.http.observe import Observer
from tidings.http.params import StrictBodies
from tidings.http.publish import publish_endpoint
from tidings.http.streams import sse_endpoint, ws_endpoint
from tidings.node import Tidings

PUBLISH_PATHS = frozenset(publish.OPENAPI_PATHS)
STATIC_PREFIX = pages.STATIC_PATH + "/"
STATIC_ROUTE = pages.STATIC_PATH + "/{path}"
GC_THRESHOLDS = (50_000, 20, 10)  # young, middle, old (CPython's default: 700, 10, 10)
log = logging.getLogger("tidings")


class TidingsApp:
    """The ASGI callable ``tidings serve`` runs, and the one a host app mounts
    (``Mount("/hub", hub)`` or ``Mount("/", hub)``, see docs/EMBEDDING.md).

    Requests are routed on their path below ``scope["root_path"]`` (the
    ASGI rule: ``path`` includes ``root_path``, which a host's ``Mount``
    sets to its prefix), so every route works under a prefix; at the root
    (no ``root_path``) routing is what it always was."""

    def __init__(self, tidings: Tidings) -> None:
        self.tidings = tidings
        self._holders = 0  # open lifespan() contexts: the first starts, the last stops
        self._holding = asyncio.Lock()
        self.metrics = Metrics(tidings)
        self.api = build_api(tidings, self.lifespan, self.metrics)
        self.manager = manager.build(tidings)
        self.stream_paths = frozenset({"/api/events", *tidings.settings.stream_aliases})
        requests = HttpMetrics(self.metrics.registry)
        for route in PUBLISH_PATHS:  # the hot path's series exist from the start
            requests.bind("POST", route, 202)
        self.observer = Observer(requests, access_log=tidings.settings.access_log)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self.api(scope, receive, send)
            return
        started = time.perf_counter()
        exchange = self.observer.begin(scope, send)
        path = scope.get("path", "")
        root = scope.get("root_path")
        if root and path.startswith(root):  # mounted under a prefix
            path = path[len(root) :]
        route: str | None = path  # raw routes: the path is the template
        stream = False
        try:
            if kind == "http" and scope["method"] == "GET" and path in self.stream_paths:
                stream = True
                await sse_endpoint(self.tidings, scope, receive, exchange)
            elif kind == "http" and scope["method"] == "POST" and path in PUBLISH_PATHS:
                await publish_endpoint(self.tidings, scope, receive, exchange)
            elif kind == "websocket" and path == "/ws/events":
                stream = True
                await ws_endpoint(self.tidings, scope, receive, exchange)
            elif kind == "http" and manager.is_admin_path(path):
                route = None  # the template the admin app's router matched
                await self.manager(scope, receive, exchange)
            else:
                route = None
                await self.api(scope, receive, exchange)
                if exchange.route_of(scope) is None and path.startswith(STATIC_PREFIX):
                    route = STATIC_ROUTE  # FastAPI records no route for a mount
        except Exception:
            exchange.status = exchange.status or 500  # what the server answers for us
            raise
        finally:
            self.observer.end(scope, exchange, route, started, stream=stream)

    @asynccontextmanager
    async def lifespan(self) -> AsyncIterator[TidingsApp]:
        """Run the node for the duration of the ``async with``: a host that
        mounts the hub calls it in its own lifespan (Starlette's ``Mount``
        does not forward lifespan events to a mounted app)::

            @asynccontextmanager
            async def lifespan(app):
                async with hub.lifespan():
                    yield

        Safe to nest or to overlap with the server's own lifespan events
        reaching this app: the first context to enter starts the node, the
        last to leave stops it (stopping also ends the open streams)."""
        async with self._holding:
            if self._holders == 0:
                await _start(self.tidings)
            self._holders += 1
        try:
            yield self
        finally:
            async with self._holding:
                self._holders -= 1
                if self._holders == 0:
                    await self.tidings.stop()


async def _start(tidings: Tidings) -> None:
    await tidings.start()
    if tidings.sessions.per_process:  # said where /admin is served, not by CLI commands
        log.warning(
            "admin UI sessions hold on this process only: set TIDINGS_SESSION_SECRET"
            " (or TIDINGS_ADMIN_KEY) for a deployment of several processes"
        )
    # What startup built (catalog, compiled validators, routes) lives as
    # long as the process: out of the collector's generations, it is not
    # rescanned by every full collection (measured: ~10% of a batch
    # publish's time went to collections). Collected first, so no
    # garbage is frozen with it.
    gc.collect()
    gc.freeze()
    # Every 700 allocations a young collection, and a full one whenever
    # the long-lived objects grew by a quarter: while 10,000 streams
    # connect that is ~14 full collections, each scanning every stream
    # with the loop stopped (0.1-2 s apiece, measured in s2, nearly all
    # finding nothing). Rarer young collections make full ones rare
    # (one per s2 run); cyclic garbage waits a little longer.
    gc.set_threshold(*GC_THRESHOLDS)


def build_api(
    tidings: Tidings,
    run_node: Callable[[], AbstractAsyncContextManager[Any]],
    metrics: Metrics,
) -> FastAPI:
    """The request/response API; its lifespan runs the node with ``run_node``."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        async with run_node():
            yield

    api = FastAPI(
        title="Tidings",
        version=__version__,
        description="A multi-tenant domain-event hub: publish, store, stream, automate.",
        lifespan=lifespan,
        docs_url=None,  # apidoc.install_docs: Swagger UI packaged, not from a CDN
        redoc_url=None,
    )
    api.state.tidings = tidings
    api.state.metrics = metrics
    problems.install(api)
    api.add_middleware(StrictBodies, limit=tidings.settings.max_api_body_bytes)
    for router in (
        events.router,
        admin.router,
        ops.router,
        catalog.router,
        notifications.router,
        inbound.router,
        entities.router,
        automation.router,
    ):
        api.include_router(router)
    pages.install(api)
    manager.install_front(api)
    apidoc.install_docs(api)
    aliases = tidings.settings.stream_aliases

    def openapi() -> dict[str, Any]:
        if api.openapi_schema is None:
            schema = get_openapi(
                title=api.title, version=api.version, description=api.description, routes=api.routes
            )
            api.openapi_schema = apidoc.complete(schema, ("/api/events", *aliases))
        return api.openapi_schema

    api.openapi = openapi  # type: ignore[method-assign]
    return api


def create_app(settings: Settings | None = None, **overrides: Any) -> TidingsApp:
    """A hub: ``settings``, else :func:`~tidings.config.load_settings` with
    ``overrides`` (``TIDINGS_*`` variables and the config file still apply).
    Public as :func:`tidings.create_hub`."""
    from tidings.config import load_settings

    return TidingsApp(Tidings(settings or load_settings(**overrides)))
