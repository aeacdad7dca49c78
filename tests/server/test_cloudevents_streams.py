"""CloudEvents framing of the live streams (``?format=cloudevents``): SSE
read with httpx-sse and WebSocket with websockets, each event parsed by the
``cloudevents`` SDK; control frames unchanged; resume works the same; an
unknown format is a 422 naming ``format``. In the hub: each event's
CloudEvents form is encoded once, shared by every stream."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import orjson
import pytest
from cloudevents.core.bindings.http import HTTPMessage, from_structured
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import InvalidStatus

from memory_log import make_event, reader
from support import Admin, ServerProcess, bearer, sse
from tidings.core.audience import Viewer
from tidings.core.patterns import TypeFilter
from tidings.hub.hub import Hub
from tidings.hub.stream import CloudEventsQueue, QueueStream

FORMAT = JSONFormat()
CE = {"format": "cloudevents"}


def parse(data: str | bytes) -> CloudEvent:
    message = HTTPMessage(
        {"content-type": "application/cloudevents+json"},
        bytes(data, "utf-8") if isinstance(data, str) else data,
    )
    event = from_structured(message, FORMAT, CloudEvent)
    assert isinstance(event, CloudEvent)
    return event


def publish(admin: Admin, tenant: str, n: int) -> list[dict[str, Any]]:
    answers = []
    for i in range(n):
        event = {
            "type": "qms.car.updated",
            "tenantId": tenant,
            "entityId": f"c{i}",
            "audiences": ["user:u1"],
            "data": {"n": i},
        }
        response = admin.publish(event)
        assert response.status_code == 202, response.text
        answers.append(response.json())
    return answers


def check(event: CloudEvent, tenant: str, answer: dict[str, Any], n: int) -> None:
    assert event.get_id() == answer["id"] and event.get_type() == "qms.car.updated"
    assert event.get_source() == f"/tenants/{tenant}" and event.get_subject() == f"c{n}"
    assert event.get_extension("tenantid") == tenant
    assert event.get_extension("position") == answer["position"]
    assert event.get_extension("audiences") == "user:u1"
    assert event.get_data() == {"n": n}


async def _sse_events(stream: Any, n: int) -> list[tuple[str | None, str]]:
    out = []
    while len(out) < n:
        message = await asyncio.wait_for(stream.queue.get(), 10)
        assert message is not None, "the stream ended"
        out.append((message.id or None, message.data))
    return out


async def test_sse_frames_each_event_as_a_cloudevent_and_resumes(
    server: ServerProcess, admin: Admin
) -> None:
    tenant = admin.tenant()
    token = admin.user(tenant, "u1", "member")
    async with sse(server.url, token, params=CE) as stream:
        assert stream.connected["type"] == "connected"  # control frames stay native
        answers = publish(admin, tenant, 2)
        frames = await _sse_events(stream, 2)
    for n, (frame_id, data) in enumerate(frames):
        assert frame_id == str(answers[n]["position"])  # id: is still the position
        check(parse(data), tenant, answers[n], n)
    resume = {"Last-Event-ID": str(answers[0]["position"])}
    async with sse(server.url, token, params=CE, headers=resume) as stream:
        ((frame_id, data),) = await _sse_events(stream, 1)
    assert frame_id == str(answers[1]["position"])
    check(parse(data), tenant, answers[1], 1)


async def test_websocket_frames_each_event_as_a_cloudevent(
    server: ServerProcess, admin: Admin
) -> None:
    tenant = admin.tenant()
    token = admin.user(tenant, "u1", "member")
    url = server.url.replace("http://", "ws://") + "/ws/events?format=cloudevents"
    async with ws_connect(url, additional_headers=bearer(token), open_timeout=20) as ws:
        connected = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert connected["type"] == "connected"
        answers = publish(admin, tenant, 2)
        texts = [await asyncio.wait_for(ws.recv(), 10) for _ in range(2)]
    for n, text in enumerate(texts):
        check(parse(text), tenant, answers[n], n)


async def test_an_unknown_format_is_refused_by_name(server: ServerProcess, admin: Admin) -> None:
    tenant = admin.tenant()
    token = admin.user(tenant, "u1", "member")
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        response = await client.get("/api/events", params={"format": "xml"}, headers=bearer(token))
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["field"] == "format"


def _stream(kind: type[QueueStream], viewer: Viewer) -> QueueStream:
    stream = kind(
        viewer, TypeFilter.parse(None), as_json=True, user_key=None, max_buffer=1 << 20, linger_s=1
    )
    stream.live = True
    return stream


async def test_the_hub_encodes_an_events_cloudevent_once_for_every_stream() -> None:
    hub = Hub(heartbeat_s=60.0, retry_ms=1000)
    viewer = reader()
    ce_streams = [_stream(CloudEventsQueue, viewer) for _ in range(3)]
    native = _stream(QueueStream, viewer)
    for stream in [*ce_streams, native]:
        hub.attach(stream)
    hub.dispatch([make_event(1)])
    hub.dispatch([make_event(2), make_event(3)])  # coalesced: one write per stream
    frames = [list(stream._queue) for stream in ce_streams]
    assert [f.position for f in frames[0]] == [1, 2, 3]
    for other in frames[1:]:
        assert all(a is b for a, b in zip(frames[0], other, strict=True))  # the same bytes
    assert orjson.loads(native._queue[0].json)["tenantId"] == "t1"  # native streams unchanged
    assert parse(frames[0][0].json).get_extension("position") == 1


@pytest.mark.parametrize("bad", ["CloudEvents", "json"])
async def test_websocket_refuses_an_unknown_format(
    server: ServerProcess, admin: Admin, bad: str
) -> None:
    """Refused in the handshake, like any bad parameter (the OpenAPI
    document: a refused handshake is a 403, the reason is not sent)."""
    tenant = admin.tenant()
    token = admin.user(tenant, "u1", "member")
    url = server.url.replace("http://", "ws://") + f"/ws/events?format={bad}"
    with pytest.raises(InvalidStatus) as refused:
        async with ws_connect(url, additional_headers=bearer(token), open_timeout=20):
            pass
    assert refused.value.response.status_code == 403
    good = url.replace(f"format={bad}", "format=native")
    async with ws_connect(good, additional_headers=bearer(token), open_timeout=20) as ws:
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "connected"
