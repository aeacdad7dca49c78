"""The baseline: what a team would write instead of Tidings.

Plain Starlette + sse-starlette: one unbounded ``asyncio.Queue`` per
connected client, a POST endpoint that JSON-encodes the event once and puts
it into every queue, served by uvicorn with uvloop + httptools. No
authentication, no audience filtering, no durable log: it is the floor a
hand-rolled fan-out starts from.

Wire format matches Tidings so the same client reads both: the first message
is ``{"type": "connected"}``, then each event is ``id: <position>`` +
``data: <envelope JSON>``.

Run: ``python -m tidings.bench.baseline_app --port 8001``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from sse_starlette import EventSourceResponse
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

queues: set[asyncio.Queue[tuple[str, str]]] = set()
position = 0


async def stream(request: Request) -> EventSourceResponse:
    queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
    queues.add(queue)

    async def events() -> AsyncIterator[dict[str, Any]]:
        try:
            yield {"data": json.dumps({"type": "connected", "position": position})}
            while True:
                event_id, data = await queue.get()
                yield {"id": event_id, "data": data}
        finally:
            queues.discard(queue)

    return EventSourceResponse(events(), sep="\n")


def fan_out(event: dict[str, Any]) -> dict[str, Any]:
    global position
    position += 1
    message = (str(position), json.dumps(event))
    for queue in queues:
        queue.put_nowait(message)
    return {"id": f"evt_{position}", "position": position}


async def publish(request: Request) -> JSONResponse:
    return JSONResponse(fan_out(await request.json()), status_code=202)


async def publish_batch(request: Request) -> JSONResponse:
    body = await request.json()
    return JSONResponse({"results": [fan_out(e) for e in body["events"]]}, status_code=202)


async def ready(_request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


app = Starlette(
    routes=[
        Route("/events", stream),
        Route("/publish", publish, methods=["POST"]),
        Route("/publish/batch", publish_batch, methods=["POST"]),
        Route("/readyz", ready),
    ]
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args()
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
        backlog=4096,
        timeout_graceful_shutdown=2,
    )


if __name__ == "__main__":
    main()
