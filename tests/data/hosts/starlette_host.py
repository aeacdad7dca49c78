"""A Starlette host app that embeds the hub (docs/EMBEDDING.md's recipe):
its own route, then the hub mounted at ``HOST_HUB_PREFIX`` ("" = the root)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from hostcheck import PREFIX, tidings_tasks, write_report
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from tidings import create_hub

hub = create_hub()  # TIDINGS_* settings from the environment


@asynccontextmanager
async def lifespan(_app: Starlette) -> AsyncIterator[None]:
    async with hub.lifespan():  # a mounted app's own lifespan never runs
        yield
    write_report(hub)


async def hello(_request: Request) -> JSONResponse:
    return JSONResponse(
        {"host": "starlette", "hubStarted": hub.tidings.started, "tasks": len(tidings_tasks())}
    )


app = Starlette(
    routes=[
        Route("/host/hello", hello),
        Mount(PREFIX or "/", app=hub),  # last: at the root it takes every other path
    ],
    lifespan=lifespan,
)
