"""The SDK's non-I/O half, without a server: each public method is written
once (an operation both clients run), its steps and retries are decided
here, and ``Retry-After`` is read by the one parser in
:mod:`tidings.core.retry`."""

from __future__ import annotations

import inspect
import json
import time
from email.utils import formatdate
from typing import Any

import httpx
import pytest

from tidings.core.retry import parse_retry_after
from tidings.errors import RateLimited, Unavailable
from tidings.sdk import AsyncTidingsClient, BaseClient, TidingsClient
from tidings.sdk.client import Operation, Pause, retry_after_s

# Every public method and its parameters, as users call them on both clients.
METHODS = {
    "publish": "(event: 'Mapping[str, Any]', idempotency_key: 'str | None' = None)"
    " -> 'dict[str, Any]'",
    "publish_batch": "(events: 'Iterable[Mapping[str, Any]]') -> 'list[dict[str, Any]]'",
    "stream_ticket": "() -> 'str'",
    "history": "(**filters: 'Any') -> 'dict[str, Any]'",
    "put_tenant": "(tenant_id: 'str', name: 'str', settings: 'Mapping[str, Any] | None' = None)"
    " -> 'dict[str, Any]'",
    "put_user": "(tenant_id: 'str', user_id: 'str', system_role: 'str', *,"
    " grant: 'Sequence[str]' = (), revoke: 'Sequence[str]' = (),"
    " resources: 'Sequence[str]' = (), platform: 'bool' = False,"
    " platform_tenants: 'Sequence[str] | None' = None) -> 'dict[str, Any]'",
    "put_role": "(role: 'str', permissions: 'Sequence[str]', tenant_id: 'str | None' = None)"
    " -> 'dict[str, Any]'",
    "create_api_key": "(scopes: 'Sequence[str]', tenant_id: 'str | None' = None,"
    " name: 'str' = 'api key') -> 'dict[str, Any]'",
    "notify": "(user_id: 'str', title: 'str', *, type: 'str' = 'info', body: 'str' = '',"
    " link: 'str | None' = None, tenant_id: 'str | None' = None) -> 'dict[str, Any]'",
    # the automation API (the CLI's --url form: tests/cli/test_cli_remote.py)
    "list_rules": "(tenant_id: 'str | None' = None) -> 'list[dict[str, Any]]'",
    "get_rule": "(rule_id: 'str') -> 'dict[str, Any]'",
    "create_rule": "(rule: 'Mapping[str, Any]') -> 'dict[str, Any]'",
    "delete_rule": "(rule_id: 'str') -> 'None'",
    "test_rule": "(rule_id: 'str', event: 'Mapping[str, Any]') -> 'dict[str, Any]'",
    "install_rule_pack": "(name: 'str', tenant_id: 'str | None' = None) -> 'list[dict[str, Any]]'",
    "install_own_rule_pack": "(pack: 'Mapping[str, Any]', tenant_id: 'str | None' = None)"
    " -> 'list[dict[str, Any]]'",
    "list_jobs": "(*, status: 'str | None' = None, tenant_id: 'str | None' = None,"
    " rule_id: 'str | None' = None, limit: 'int' = 100, before: 'int | None' = None)"
    " -> 'dict[str, Any]'",
    "retry_jobs": "(ids: 'Sequence[int]') -> 'int'",
    "discard_jobs": "(ids: 'Sequence[int]', reason: 'str') -> 'int'",
    "replay": "(since: 'str', until: 'str', *, tenant_id: 'str | None' = None,"
    " rule_id: 'str | None' = None, dry_run: 'bool' = False, force: 'bool' = False)"
    " -> 'dict[str, Any]'",
}


def answer(status: int, body: Any = None, **headers: str) -> httpx.Response:
    content = b"" if body is None else json.dumps(body).encode()
    kind = "application/json" if status < 400 else "application/problem+json"
    return httpx.Response(status, headers={"content-type": kind, **headers}, content=content)


def drive(operation: Operation[Any], *outcomes: httpx.Response | httpx.TransportError) -> list[Any]:
    """The steps ``operation`` takes when its requests meet ``outcomes`` in
    turn (pauses are answered at once), then what it returned."""
    steps: list[Any] = []
    replies = list(outcomes)
    try:
        step = next(operation)
        while True:
            steps.append(step)
            step = operation.send(None if isinstance(step, Pause) else replies.pop(0))
    except StopIteration as done:
        steps.append(done.value)
    return steps


@pytest.fixture
def client() -> Any:
    with TidingsClient("http://tidings.test/", token="tdk_x", backoff=0.5, max_retries=2) as sync:
        yield sync


def test_both_clients_have_the_same_methods() -> None:
    sync = TidingsClient("http://tidings.test")
    asynchronous = AsyncTidingsClient("http://tidings.test")
    public = {
        name
        for name, value in vars(BaseClient).items()
        if not name.startswith("_") and inspect.ismethoddescriptor(value)
    }
    assert public == set(METHODS)
    for name, signature in METHODS.items():
        method, coroutine = getattr(sync, name), getattr(asynchronous, name)
        assert str(inspect.signature(method)) == str(inspect.signature(coroutine)) == signature
        assert not inspect.iscoroutinefunction(method) and inspect.iscoroutinefunction(coroutine)
        assert method.__doc__ == coroutine.__doc__ and method.__doc__
        assert method.__qualname__ == f"TidingsClient.{name}"
    sync.close()


def test_base_client_sends_nothing() -> None:
    with pytest.raises(TypeError, match="TidingsClient or AsyncTidingsClient"):
        BaseClient("http://tidings.test")


def test_publish_names_the_event_once_and_retries_the_same_request(client: Any) -> None:
    steps = drive(
        BaseClient.publish.build(client, {"type": "qms.car.updated"}, "key-1"),
        answer(503, {"code": "unavailable"}, **{"Retry-After": "2"}),
        httpx.ConnectError("refused"),
        answer(200, {"id": "evt_1", "position": 7}),
    )
    first, wait, again, backoff, last, result = steps
    assert first is again is last  # one request: the same event id on every attempt
    assert json.loads(first.content)["id"].startswith("evt_")
    assert first.headers["Idempotency-Key"] == "key-1"
    assert first.headers["Authorization"] == "Bearer tdk_x"
    assert str(first.url) == "http://tidings.test/api/events"
    assert wait == Pause(2.0)  # the server's Retry-After
    assert 0.25 <= backoff.seconds < 0.5 * 2  # backoff after a transport error (attempt 1)
    assert result == {"id": "evt_1", "position": 7}


def test_retries_stop_after_max_retries(client: Any) -> None:
    busy = answer(429, {"code": "rate_limited"}, **{"Retry-After": "0"})
    with pytest.raises(RateLimited) as caught:
        drive(BaseClient.publish.build(client, {"type": "t"}), busy, busy, busy)
    assert caught.value.extra == {"retry_after": 0.0}
    refused = [httpx.ConnectError("")] * 3
    with pytest.raises(Unavailable, match=r"cannot reach http://tidings\.test: ConnectError$"):
        drive(BaseClient.publish_batch.build(client, [{"type": "t"}]), *refused)


def test_reads_are_not_retried(client: Any) -> None:
    with pytest.raises(Unavailable):
        drive(BaseClient.history.build(client, tenant_id="t"), answer(503, {"code": "x"}))


def test_history_names_the_query_parameters(client: Any) -> None:
    steps = drive(
        BaseClient.history.build(client, types=["qms.*", "tasks.*"], entity_id="c1", cursor=None),
        answer(200, {"items": [], "nextCursor": None}),
    )
    assert steps[0].url.params == httpx.QueryParams(types="qms.*,tasks.*", entityId="c1")
    with pytest.raises(TypeError, match="unknown filter 'entityid'"):
        drive(BaseClient.history.build(client, entityid="c1"))


@pytest.mark.parametrize(
    "header",
    [
        "0",
        "120",
        "1.5",
        " 7 ",
        "-5",
        "soon",
        "",
        "inf",
        formatdate(time.time() + 3600, usegmt=True),
    ],
)
def test_retry_after_is_read_by_the_core_parser(header: str) -> None:
    response = httpx.Response(503, headers={"Retry-After": header})
    now = time.time()
    expected = parse_retry_after(header, now)
    got = retry_after_s(response)
    if expected is None:
        assert got is None
    else:
        assert got is not None and abs(got - expected) < 2


def test_retry_after_absent_or_past() -> None:
    assert retry_after_s(httpx.Response(503)) is None
    past = formatdate(time.time() - 3600, usegmt=True)
    assert retry_after_s(httpx.Response(503, headers={"Retry-After": past})) == 0.0
