"""Outbound webhooks against a real receiver (uvicorn on loopback) that
verifies every request with the ``standardwebhooks`` library."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from email.utils import formatdate
from typing import Any

import httpx
import orjson
import pytest
import uvicorn
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from support import free_port
from tidings.automation.urls import check_resolved, check_webhook_url
from tidings.automation.webhook import (
    USER_AGENT,
    check_secret,
    deliver_webhook,
    new_secret,
    sign,
)
from tidings.errors import InvalidInput

OLD_SECRET = new_secret()
NEW_SECRET = new_secret()
HOLDERS = {"old": OLD_SECRET, "new": NEW_SECRET}


@dataclass
class Call:
    holder: str
    behaviour: str
    headers: dict[str, str]
    payload: dict[str, Any] | None
    error: str | None


CALLS: list[Call] = []


async def hook(request: Request) -> Response:
    """``/<holder>/<behaviour>``: verify with the holder's secret, then act."""
    holder = request.path_params["holder"]
    behaviour = request.path_params["behaviour"]
    body = await request.body()
    headers = dict(request.headers)
    try:
        payload = Webhook(HOLDERS[holder]).verify(body, headers)
    except WebhookVerificationError as exc:
        CALLS.append(Call(holder, behaviour, headers, None, str(exc)))
        return PlainTextResponse(f"bad signature: {exc}", status_code=401)
    CALLS.append(Call(holder, behaviour, headers, payload, None))
    if behaviour == "ok":
        return PlainTextResponse("thanks")
    if behaviour == "fail":
        return PlainTextResponse("boom\n" * 200, status_code=500)
    if behaviour == "gone":
        return PlainTextResponse("endpoint removed", status_code=410)
    if behaviour == "busy":
        return PlainTextResponse("slow down", status_code=429, headers={"Retry-After": "7"})
    if behaviour == "down":
        when = formatdate(time.time() + 120, usegmt=True)
        return PlainTextResponse("maintenance", status_code=503, headers={"Retry-After": when})
    if behaviour == "redirect":
        return Response(status_code=302, headers={"Location": "/new/ok"})
    if behaviour == "slow":
        await asyncio.sleep(1.0)
        return PlainTextResponse("late")
    return PlainTextResponse("unknown behaviour", status_code=404)


@pytest.fixture(scope="module")
def receiver() -> Iterator[str]:
    app = Starlette(routes=[Route("/{holder}/{behaviour}", hook, methods=["POST"])])
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="off",
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "receiver did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(5)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(trust_env=False) as http:
        yield http


async def deliver(client: httpx.AsyncClient, url: str, **kwargs: Any) -> Any:
    CALLS.clear()
    options: dict[str, Any] = {
        "secrets": [NEW_SECRET],
        "msg_id": "msg_1",
        "event_type": "qms.capa.created",
        "data": {"entityId": "CAPA-7", "score": 4.5},
        "allow_private": True,
        **kwargs,
    }
    return await deliver_webhook(client, url=url, **options)


async def test_ok(receiver: str, client: httpx.AsyncClient) -> None:
    outcome = await deliver(
        client,
        f"{receiver}/new/ok",
        headers={"X-Tenant": "acme", "webhook-id": "forged", "Content-Type": "text/plain"},
    )
    assert outcome.ok, outcome
    assert (outcome.status, outcome.detail) == (200, "HTTP 200")
    [call] = CALLS
    assert call.error is None
    assert call.payload is not None
    assert call.payload["type"] == "qms.capa.created"
    assert call.payload["data"] == {"entityId": "CAPA-7", "score": 4.5}
    stamp = datetime.fromisoformat(call.payload["timestamp"].replace("Z", "+00:00"))
    assert abs(stamp.timestamp() - time.time()) < 60
    assert call.headers["webhook-id"] == "msg_1"
    assert call.headers["content-type"] == "application/json"
    assert call.headers["user-agent"] == USER_AGENT
    assert call.headers["x-tenant"] == "acme"
    assert abs(int(call.headers["webhook-timestamp"]) - time.time()) < 60


async def test_500_is_retryable(receiver: str, client: httpx.AsyncClient) -> None:
    outcome = await deliver(client, f"{receiver}/new/fail")
    assert not outcome.ok and not outcome.permanent and not outcome.disable_rule
    assert outcome.status == 500
    assert outcome.detail.startswith("HTTP 500: boom boom")
    assert "\n" not in outcome.detail and len(outcome.detail) < 230


async def test_410_disables_the_rule(receiver: str, client: httpx.AsyncClient) -> None:
    outcome = await deliver(client, f"{receiver}/new/gone")
    assert not outcome.ok and outcome.permanent and outcome.disable_rule
    assert outcome.status == 410
    assert outcome.detail == "HTTP 410: endpoint removed"


async def test_429_retry_after_seconds(receiver: str, client: httpx.AsyncClient) -> None:
    outcome = await deliver(client, f"{receiver}/new/busy")
    assert not outcome.ok and not outcome.permanent
    assert (outcome.status, outcome.retry_after) == (429, 7.0)


async def test_503_retry_after_date(receiver: str, client: httpx.AsyncClient) -> None:
    outcome = await deliver(client, f"{receiver}/new/down")
    assert not outcome.ok and not outcome.permanent and outcome.status == 503
    assert outcome.retry_after is not None and 110 <= outcome.retry_after <= 121


async def test_redirect_is_not_followed(receiver: str, client: httpx.AsyncClient) -> None:
    outcome = await deliver(client, f"{receiver}/new/redirect")
    assert not outcome.ok and outcome.status == 302
    assert "/new/ok" in outcome.detail
    assert [c.behaviour for c in CALLS] == ["redirect"]


async def test_rotation_old_secret_still_verifies(receiver: str, client: httpx.AsyncClient) -> None:
    outcome = await deliver(client, f"{receiver}/old/ok", secrets=[NEW_SECRET, OLD_SECRET])
    assert outcome.ok, outcome
    [call] = CALLS
    assert call.error is None
    assert len(call.headers["webhook-signature"].split(" ")) == 2
    # and the receiver really checks: the new secret alone does not pass
    outcome = await deliver(client, f"{receiver}/old/ok", secrets=[NEW_SECRET])
    assert not outcome.ok and outcome.status == 401
    assert CALLS[0].error is not None


async def test_same_msg_id_same_webhook_id(receiver: str, client: httpx.AsyncClient) -> None:
    ids = []
    for _ in range(2):
        assert (await deliver(client, f"{receiver}/new/ok", msg_id="msg_job_9")).ok
        ids.append(CALLS[0].headers["webhook-id"])
    assert ids == ["msg_job_9", "msg_job_9"]


async def test_timeout_is_retryable(receiver: str, client: httpx.AsyncClient) -> None:
    started = time.monotonic()
    outcome = await deliver(client, f"{receiver}/new/slow", timeout=0.3)
    assert time.monotonic() - started < 1.0
    assert not outcome.ok and not outcome.permanent
    assert outcome.detail == "timeout after 0.3s"


async def test_connection_refused_is_retryable(client: httpx.AsyncClient) -> None:
    outcome = await deliver(client, f"http://127.0.0.1:{free_port()}/new/ok")
    assert not outcome.ok and not outcome.permanent
    assert outcome.detail == "connection refused"


async def test_private_target_is_refused_before_sending(
    receiver: str, client: httpx.AsyncClient
) -> None:
    port = receiver.rsplit(":", 1)[1]
    for url in (f"{receiver}/new/ok", f"http://localhost:{port}/new/ok"):
        outcome = await deliver(client, url, allow_private=False)
        assert not outcome.ok and outcome.permanent
        assert "allow_private_webhooks" in outcome.detail
    assert CALLS == []


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/tidings",
        "http://hooks.example.com:8080/a?b=c",
        "https://93.184.216.34/x",
        "https://[2606:4700:4700::1111]/x",
    ],
)
def test_check_webhook_url_allows(url: str) -> None:
    check_webhook_url(url, allow_private=False)


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost/x",
        "http://LOCALHOST./x",
        "http://api.localhost:8000/x",
        "http://127.0.0.1/x",
        "http://127.1/x",
        "http://2130706433/x",
        "http://0x7f000001/x",
        "http://10.1.2.3/x",
        "http://172.16.0.1/x",
        "http://192.168.1.1/x",
        "http://169.254.169.254/latest/meta-data",
        "http://100.64.0.1/x",
        "http://0.0.0.0/x",
        "http://224.0.0.1/x",
        "http://240.0.0.1/x",
        "http://[::1]/x",
        "http://[::]/x",
        "http://[fe80::1%25eth0]/x",
        "http://[fc00::1]/x",
        "http://[::ffff:127.0.0.1]/x",
        "http://[::ffff:10.0.0.1]/x",
        "http://[2002:7f00:1::]/x",
        "http://[64:ff9b::a00:1]/x",
    ],
)
def test_check_webhook_url_refuses_private(url: str) -> None:
    with pytest.raises(InvalidInput, match="allow_private_webhooks") as caught:
        check_webhook_url(url, allow_private=False)
    assert caught.value.field == "/action/config/url"
    check_webhook_url(url, allow_private=True)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/x",
        "file:///etc/passwd",
        "https://user:pass@example.com/x",
        "https://@example.com/x",
        "http:///x",
        "http://./x",
        "https://example.com:99999/x",
        "https://exa mple.com/x",
        "https://example.com/\r\nx",
        "https://example.com/" + "x" * 2048,
        "example.com/x",
        "",
    ],
)
def test_check_webhook_url_refuses_malformed(url: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        check_webhook_url(url, allow_private=True, field="/url")
    assert caught.value.field == "/url"


async def test_check_resolved() -> None:
    message = await check_resolved("http://localhost:8080/x", allow_private=False)
    assert message is not None and "allow_private_webhooks" in message
    assert await check_resolved("http://localhost:8080/x", allow_private=True) is None
    assert await check_resolved("https://93.184.216.34/x", allow_private=False) is None
    assert await check_resolved("http://127.0.0.1/x", allow_private=False) is not None


def test_sign_matches_the_library() -> None:
    body = orjson.dumps({"type": "t", "timestamp": "x", "data": {}}).decode()
    now = datetime.now(UTC)
    header = sign([NEW_SECRET, OLD_SECRET], "msg_1", now, body)
    first, second = header.split(" ")
    assert first == Webhook(NEW_SECRET).sign("msg_1", now, body)
    assert second == Webhook(OLD_SECRET).sign("msg_1", now, body)
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": header,
    }
    Webhook(OLD_SECRET).verify(body, headers, json_parse=False)
    # the same instant in another zone signs the same
    elsewhere = now.astimezone(timezone(timedelta(hours=5)))
    assert sign([NEW_SECRET], "msg_1", elsewhere, body) == first
    with pytest.raises(InvalidInput):
        sign([], "msg_1", now, body)


def test_secrets() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_") and secret != new_secret()
    check_secret(secret, "/secret")
    check_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "/secret")  # the spec's example
    for bad in ("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_c2hvcnQ=", "whsec_!!!!", "whsec_"):
        with pytest.raises(InvalidInput) as caught:
            check_secret(bad, "/secret")
        assert caught.value.field == "/secret"
