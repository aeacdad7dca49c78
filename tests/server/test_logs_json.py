"""JSON logs of a real server (``TIDINGS_LOG_FORMAT=json``), read back from
its log file line by line: every line is one JSON object, no colour codes
or uvicorn ``color_message`` leak in, and each request (the raw ASGI
publish, SSE and WebSocket routes included) has exactly one access line
with its method, route template, status, duration and request id, the id
the response echoed in ``X-Request-ID``."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from support import Admin, ServerProcess, bearer, running_server
from tidings.http.observe import MAX_REQUEST_ID, request_id

GENERATED = re.compile(r"[0-9a-f]{32}")


@pytest.fixture(scope="module")
def json_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {"TIDINGS_LOG_FORMAT": "json", "TIDINGS_LOG_LEVEL": "info"}
    with running_server(tmp_path_factory.mktemp("logs"), env=env) as server:
        yield server


def log_lines(server: ServerProcess) -> list[dict[str, Any]]:
    assert server.log_path is not None
    raw = server.log_path.read_text()
    assert "\x1b" not in raw  # no ANSI colour codes anywhere
    return [json.loads(line) for line in raw.splitlines() if line.strip()]


def access_lines(server: ServerProcess, rid: str, timeout: float = 15.0) -> list[dict[str, Any]]:
    """The access lines of request ``rid`` (waiting for the line to be written)."""
    deadline = time.monotonic() + timeout
    while True:
        found = [
            line
            for line in log_lines(server)
            if line["logger"] == "tidings.access" and line.get("request_id") == rid
        ]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_every_line_is_a_json_object_without_colours(json_server: ServerProcess) -> None:
    assert httpx.get(f"{json_server.url}/healthz", timeout=10).status_code == 200
    lines = log_lines(json_server)
    assert any(line["logger"].startswith("uvicorn") for line in lines)  # uvicorn's own, too
    for line in lines:
        assert {"ts", "level", "logger", "msg"} <= set(line), line
        assert "color_message" not in line, line


def test_a_given_request_id_is_echoed_and_logged(json_server: ServerProcess) -> None:
    response = httpx.get(
        f"{json_server.url}/api/catalog", headers={"X-Request-ID": "trace-42.a:b_c"}, timeout=10
    )
    assert response.headers["x-request-id"] == "trace-42.a:b_c"
    (line,) = access_lines(json_server, "trace-42.a:b_c")
    assert line["method"] == "GET" and line["route"] == "/api/catalog"
    assert line["status"] == response.status_code and line["path"] == "/api/catalog"
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert line["level"] == "info"


@pytest.mark.parametrize(
    "given", ["x" * (MAX_REQUEST_ID + 1), "has space", "new\\nline", "<script>", "ü"]
)
def test_an_unsafe_request_id_is_replaced(json_server: ServerProcess, given: str) -> None:
    response = httpx.get(
        f"{json_server.url}/healthz", headers={"X-Request-ID": given.encode()}, timeout=10
    )
    echoed = response.headers["x-request-id"]
    assert GENERATED.fullmatch(echoed), echoed
    assert len(access_lines(json_server, echoed)) == 1


def test_the_raw_routes_log_one_line_each(json_server: ServerProcess) -> None:
    admin = Admin(json_server.url)
    try:
        tenant = admin.tenant()
        token = admin.user(tenant, "alice", grant=["qms.read"])
        event = {"type": "qms.car.updated", "tenantId": tenant, "entityId": "car-1"}
        published = admin.publish(event, headers={"X-Request-ID": "pub-1"})
        assert published.status_code == 202 and published.headers["x-request-id"] == "pub-1"
        refused = admin.publish({"type": "nope"}, headers={"X-Request-ID": "pub-bad"})
        assert refused.headers["x-request-id"] == "pub-bad"
        headers = {**bearer(token), "X-Request-ID": "sse-1"}
        with (
            httpx.Client(base_url=json_server.url, timeout=15) as client,
            client.stream("GET", "/api/events", headers=headers) as stream,
        ):
            assert stream.headers["x-request-id"] == "sse-1"
            assert access_lines(json_server, "sse-1", timeout=0.5) == []  # logged when it ends
        ws_url = json_server.url.replace("http", "ws", 1) + "/ws/events"
        ws_headers = {**bearer(token), "X-Request-ID": "ws-1"}
        with connect(ws_url, additional_headers=ws_headers, open_timeout=15) as ws:
            assert ws.response.headers["x-request-id"] == "ws-1"
            ws.recv(timeout=15)
    finally:
        admin.close()
    expected = {
        "pub-1": ("POST", "/api/events", 202),
        "pub-bad": ("POST", "/api/events", refused.status_code),
        "sse-1": ("GET", "/api/events", 200),
        "ws-1": ("GET", "/ws/events", 101),
    }
    for rid, (method, route, status) in expected.items():
        (line,) = access_lines(json_server, rid)
        assert (line["method"], line["route"], line["status"]) == (method, route, status), line


def test_an_unmatched_path_is_logged_with_its_path_not_as_a_route(
    json_server: ServerProcess,
) -> None:
    response = httpx.get(
        f"{json_server.url}/no/such/thing", headers={"X-Request-ID": "miss-1"}, timeout=10
    )
    assert response.status_code == 404
    (line,) = access_lines(json_server, "miss-1")
    assert line["route"] == "unmatched" and line["path"] == "/no/such/thing"


def test_text_logs_have_no_colour_either(tmp_path: Path) -> None:
    with running_server(tmp_path, env={"TIDINGS_LOG_LEVEL": "info"}) as server:
        httpx.get(f"{server.url}/healthz", headers={"X-Request-ID": "plain-1"}, timeout=10)
        time.sleep(0.3)
    assert server.log_path is not None
    text = server.log_path.read_text()
    assert "\x1b" not in text and "color_message" not in text
    assert re.search(r"INFO tidings\.access: GET /healthz 200 [0-9.]+ms request_id=plain-1", text)


@pytest.mark.parametrize(
    ("headers", "kept"),
    [
        ([(b"x-request-id", b"abc-123")], b"abc-123"),
        ([(b"x-request-id", b"a" * MAX_REQUEST_ID)], b"a" * MAX_REQUEST_ID),
        ([(b"x-request-id", b"")], None),
        ([(b"x-request-id", b"a/b")], None),
        ([], None),
    ],
)
def test_request_ids_are_kept_only_when_safe(
    headers: list[tuple[bytes, bytes]], kept: bytes | None
) -> None:
    found = request_id({"headers": headers})
    if kept is None:
        assert GENERATED.fullmatch(found.decode())
    else:
        assert found == kept
