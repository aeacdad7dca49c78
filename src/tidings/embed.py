"""Embedding the hub in a host ASGI app (a FastAPI or Starlette app of
your own), so its streams, API and admin UI share the host's origin.
The recipe is docs/EMBEDDING.md::

    from contextlib import asynccontextmanager
    from fastapi import FastAPI
    from tidings import create_hub

    hub = create_hub()  # TIDINGS_* settings from the environment

    @asynccontextmanager
    async def lifespan(app):
        async with hub.lifespan():  # a mounted app's own lifespan never runs
            yield

    app = FastAPI(lifespan=lifespan)
    app.mount("/hub", hub)  # or app.mount("/", hub), after the host's routes

Every path of the hub works under the prefix (``/hub/api/events``,
``/hub/ws/events``, ``/hub/admin``, ``/hub/docs``); browsers connect with
``Tidings.connect({url: "/hub", ...})``.
"""

from __future__ import annotations

from tidings.http.app import TidingsApp, create_app

create_hub = create_app
"""``create_hub(settings=None, **overrides) -> TidingsApp``: the hub as an
ASGI app. Without ``settings``, ``TIDINGS_*`` variables (and the config
file) apply, then ``overrides`` (``create_hub(jwt_secret=...)``)."""

__all__ = ["TidingsApp", "create_hub"]
