"""A FastAPI host app that embeds the hub (docs/EMBEDDING.md's recipe):
its own route, then the hub mounted at ``HOST_HUB_PREFIX`` ("" = the root)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from hostcheck import PREFIX, tidings_tasks, write_report

from tidings import create_hub

hub = create_hub()  # TIDINGS_* settings from the environment


@asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
    async with hub.lifespan():  # a mounted app's own lifespan never runs
        yield
    write_report(hub)


# At the root the hub serves /docs and /openapi.json: the host's own would
# shadow them (routes match in order), so the host turns its docs off.
docs = {} if PREFIX else {"docs_url": None, "redoc_url": None, "openapi_url": None}
app = FastAPI(title="FastAPI host", lifespan=lifespan, **docs)


@app.get("/host/hello")
async def hello() -> dict[str, object]:
    return {"host": "fastapi", "hubStarted": hub.tidings.started, "tasks": len(tidings_tasks())}


app.mount(PREFIX or "/", hub)  # last: at the root it takes every other path
