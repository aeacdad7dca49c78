"""Running the ASGI app under uvicorn (uvloop + httptools), with a
graceful shutdown that tells every stream to reconnect before the server
waits for connections to finish."""

from __future__ import annotations

import logging
from typing import Any

import uvicorn

from tidings.config import Settings
from tidings.http.app import TidingsApp
from tidings.logs import configure_logging
from tidings.node import Tidings


class TidingsServer(uvicorn.Server):
    """uvicorn serving ``config``'s app: the hub ``app`` itself, or a host
    app that mounts it (the portal)."""

    def __init__(self, config: uvicorn.Config, app: TidingsApp) -> None:
        super().__init__(config)
        self.tidings_app = app

    async def shutdown(self, sockets: Any = None) -> None:
        # Streams never finish on their own: end them first (200 + retry:
        # with jitter), or uvicorn would wait for them until its timeout.
        self.tidings_app.tidings.hub.close_all()
        await super().shutdown(sockets=sockets)


def uvicorn_config(app: Any, settings: Settings, **extra: Any) -> uvicorn.Config:
    """uvicorn's settings for an ASGI ``app``: the hub, or a host that mounts it."""
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        ws="websockets-sansio",
        lifespan="on",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=5,
        backlog=4096,
        **extra,
    )


def run(settings: Settings) -> None:
    configure_logging(settings.log_level, json=settings.json_logs)
    app = TidingsApp(Tidings(settings))
    server = TidingsServer(uvicorn_config(app, settings), app)
    logging.getLogger("tidings").info("serving on http://%s:%d", settings.host, settings.port)
    server.run()
