"""Hostile scalars and bodies answer a 4xx problem naming the field and
store nothing (``tidings.http.params``): Unicode digits, numbers past 64
bits, NaN/Infinity, oversized bodies (declared or chunked), and publish
bodies that are not ``application/json``."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
import websockets
from hypothesis import given, settings
from hypothesis import strategies as st

from support import Admin, ServerProcess, bearer, unique
from tidings.errors import InvalidInput, MalformedJSON
from tidings.http.params import ascii_int, check_json

PROBLEM = "application/problem+json"
HOSTILE_INTS = ["²", "٣", "\uff17", "+5", "1_000", " 5", "-1", "1e3", "0x10", "", "9" * 30]
PAST_64_BITS = "7450430343536053321728"


def _assert_problem(response: httpx.Response, status: int, field: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["status"] == status and problem["field"] == field, problem
    return problem


@pytest.mark.parametrize("value", [*HOSTILE_INTS, PAST_64_BITS, str(2**63)])
def test_ascii_int_refuses_everything_but_ascii_digits_in_range(value: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        ascii_int(value, "limit", 0)
    assert refused.value.field == "limit"


@pytest.mark.parametrize(("value", "expected"), [("0", 0), ("42", 42), (str(2**63 - 1), 2**63 - 1)])
def test_ascii_int_reads_plain_digits(value: str, expected: int) -> None:
    assert ascii_int(value, "limit") == expected
    assert ascii_int(None, "limit") is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"a": NaN}', "/a"),
        (b'{"a": Infinity}', "/a"),
        (b'{"a": [1, -Infinity]}', "/a/1"),
        (b'{"a": 1e400}', "/a"),
        (b'{"a": {"b/c": 9223372036854775808}}', "/a/b~1c"),
        (b'{"a": -9223372036854775809}', "/a"),
        (b'{"a": ' + b"9" * 5000 + b"}", "/a"),
        (b"[0, 1, 18446744073709551616]", "/2"),
    ],
)
def test_check_json_names_the_number_it_refuses(body: bytes, field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        check_json(body)
    assert refused.value.field == field and refused.value.status == 422


def test_check_json_keeps_64_bit_numbers_and_refuses_broken_json() -> None:
    check_json(b'{"a": 9223372036854775807, "b": -9223372036854775808, "c": 1.5e300}')
    for broken in (b"{", b'{"a": 1,}', b"\xff\xfe"):
        with pytest.raises(MalformedJSON):
            check_json(broken)
    with pytest.raises(InvalidInput):
        check_json(b"[" * 100_000 + b"]" * 100_000)


@pytest.mark.parametrize("value", [*HOSTILE_INTS, PAST_64_BITS])
def test_history_parameters(server: ServerProcess, admin: Admin, value: str) -> None:
    for name in ("limit", "cursor"):
        response = admin.http.get("/api/events/log", params={name: value})
        if name == "cursor" and value == "":
            assert response.status_code == 200  # an empty cursor is the first page
            continue
        _assert_problem(response, 422, name)


@pytest.mark.parametrize("value", ["²", "\uff17", "+1", PAST_64_BITS])
def test_last_event_id_on_sse(server: ServerProcess, admin: Admin, value: str) -> None:
    tenant = admin.tenant()
    token = admin.user(tenant, "u1", "member")
    url = f"{server.url}/api/events"
    by_query = httpx.get(url, params={"lastEventId": value}, headers=bearer(token))
    _assert_problem(by_query, 422, "lastEventId")
    raw = value.encode("latin-1", errors="ignore") or value.encode()  # as the server decodes it
    by_header = httpx.get(url, headers={**bearer(token), "Last-Event-ID": raw})
    _assert_problem(by_header, 422, "Last-Event-ID")


@pytest.mark.asyncio
@pytest.mark.parametrize("value", ["²", PAST_64_BITS])
async def test_last_event_id_on_websocket_is_refused(
    server: ServerProcess, admin: Admin, value: str
) -> None:
    tenant = admin.tenant()
    token = admin.user(tenant, "u1", "member")
    url = server.url.replace("http", "ws") + f"/ws/events?lastEventId={value}"
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(url, additional_headers=bearer(token)):
            pass
    assert refused.value.response.status_code == 403  # closed before the handshake
    assert httpx.get(f"{server.url}/healthz").status_code == 200


@pytest.mark.parametrize("value", [*HOSTILE_INTS[:6], PAST_64_BITS])
def test_job_parameters(server: ServerProcess, admin: Admin, value: str) -> None:
    _assert_problem(admin.http.get("/api/admin/jobs", params={"limit": value}), 422, "limit")
    if value:
        _assert_problem(admin.http.get("/api/admin/jobs", params={"before": value}), 422, "before")
        _assert_problem(admin.http.get(f"/api/admin/jobs/{value}"), 422, "job_id")
        _assert_problem(admin.http.post(f"/api/admin/jobs/{value}/retry"), 422, "job_id")
        discard = admin.http.post(f"/api/admin/jobs/{value}/discard", json={"reason": "x"})
        _assert_problem(discard, 422, "job_id")


@pytest.mark.parametrize("job_id", [2**63, 2**64 + 1, 0])
def test_job_ids_in_bodies(server: ServerProcess, admin: Admin, job_id: int) -> None:
    for action in ("retry", "discard"):
        response = admin.http.post(f"/api/admin/jobs/{action}", json={"ids": [1, job_id]})
        assert response.status_code == 422, response.text
        assert response.json()["field"] == "/ids/1"


@pytest.mark.parametrize("value", ["²", "0", "201", "+5", PAST_64_BITS])
def test_notification_page_size(server: ServerProcess, admin: Admin, value: str) -> None:
    tenant = admin.tenant()
    token = admin.user(tenant, "u1", "member")
    response = httpx.get(
        f"{server.url}/api/notifications", params={"limit": value}, headers=bearer(token)
    )
    _assert_problem(response, 422, "limit")


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ('{"big": 18446744073709551616}', "/settings/big"),
        ('{"big": -9223372036854775809}', "/settings/big"),
        ('{"deep": {"list": [1, 2, 7450430343536053321728]}}', "/settings/deep/list/2"),
        ('{"x": NaN}', "/settings/x"),
        ('{"x": Infinity}', "/settings/x"),
        ('{"x": -Infinity}', "/settings/x"),
        ('{"x": 1e999}', "/settings/x"),
    ],
)
def test_admin_bodies_refuse_numbers_they_cannot_store(
    server: ServerProcess, admin: Admin, settings: str, field: str
) -> None:
    tenant = "strict-" + field.replace("/", "-").strip("-")
    body = '{"name": "T", "settings": ' + settings + "}"
    response = admin.http.put(
        f"/api/admin/tenants/{tenant}", content=body, headers={"content-type": "application/json"}
    )
    _assert_problem(response, 422, field)
    assert admin.http.get(f"/api/admin/tenants/{tenant}").status_code == 404


def test_rule_bodies_refuse_numbers_past_64_bits(server: ServerProcess, admin: Admin) -> None:
    name = unique("rule")
    body = (
        f'{{"name": "{name}", "priority": 99999999999999999999, "trigger": {{"type": "qms.*"}},'
        ' "action": {"type": "log", "config": {}}}'
    )
    response = admin.http.post(
        "/api/admin/rules", content=body, headers={"content-type": "application/json"}
    )
    _assert_problem(response, 422, "/priority")
    names = [rule["name"] for rule in admin.http.get("/api/admin/rules").json()["items"]]
    assert name not in names


def _chunks(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    yield b'{"name": "T", "settings": {"blob": "'
    for _ in range(total // size):
        yield b"x" * size
    yield b'"}}'


@pytest.mark.parametrize("chunked", [False, True])
def test_admin_bodies_over_the_limit_are_413(
    server: ServerProcess, admin: Admin, chunked: bool
) -> None:
    tenant = f"big-{'chunked' if chunked else 'declared'}"
    body: Any = _chunks(2 << 20) if chunked else b"".join(_chunks(2 << 20))
    try:
        response = admin.http.put(
            f"/api/admin/tenants/{tenant}",
            content=body,
            headers={"content-type": "application/json"},
        )
    except httpx.WriteError:  # refused before the client finished writing: also fine
        response = None
    if response is not None:
        _assert_problem(response, 413, "")
    assert admin.http.get(f"/api/admin/tenants/{tenant}").status_code == 404
    under = admin.http.put(f"/api/admin/tenants/{tenant}", json={"name": "T", "settings": {}})
    assert under.status_code == 201


def _event(tenant: str) -> dict[str, Any]:
    return {"type": "qms.car.updated", "tenantId": tenant, "entityId": "c1", "data": {"x": 1}}


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/jsonp",
        "application/cloudevents",  # CloudEvents types: test_cloudevents_ingest.py
        "json",
    ],
)
def test_publish_accepts_only_json(server: ServerProcess, admin: Admin, content_type: str) -> None:

    tenant = admin.tenant()
    one = orjson.dumps(_event(tenant))
    batch = orjson.dumps({"events": [_event(tenant)]})
    headers = {"content-type": content_type} if content_type else {}
    for path, body in (("/api/events", one), ("/api/events/batch", batch)):
        response = admin.http.post(path, content=body, headers=headers)  # bytes: no type added
        _assert_problem(response, 415, "Content-Type")
    history = admin.http.get("/api/events/log", params={"tenantId": tenant})
    assert history.json()["items"] == []


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=utf-8", "Application/JSON"]
)
def test_publish_accepts_json_with_parameters(
    server: ServerProcess, admin: Admin, content_type: str
) -> None:

    tenant = admin.tenant()
    headers = {"content-type": content_type}
    one = admin.http.post("/api/events", content=orjson.dumps(_event(tenant)), headers=headers)
    assert one.status_code == 202, one.text
    batch = orjson.dumps({"events": [_event(tenant)]})
    assert admin.http.post("/api/events/batch", content=batch, headers=headers).status_code == 202


HOSTILE_INSTANTS = ["nan", "inf", "-inf", "1e999", "\uff11\uff12", "1_000", "2025e999", "²"]


@pytest.mark.parametrize("value", HOSTILE_INSTANTS)
def test_time_parameters(server: ServerProcess, admin: Admin, value: str) -> None:
    for path in ("/api/events/log", "/api/admin/jobs"):
        for name in ("since", "until"):
            _assert_problem(admin.http.get(path, params={name: value}), 422, name)
    replay = admin.http.post(
        "/api/admin/replay", json={"from": value, "to": "2025-01-01T00:00:00Z", "dryRun": True}
    )
    _assert_problem(replay, 422, "/from")


@pytest.mark.parametrize("value", ["1700000000", "1700000000.25", "2025-01-01T00:00:00Z"])
def test_time_parameters_still_read_epochs_and_dates(
    server: ServerProcess, admin: Admin, value: str
) -> None:
    assert admin.http.get("/api/events/log", params={"since": value}).status_code == 200


@given(st.integers(0, 2**63 - 1))
def test_ascii_int_reads_every_64_bit_number_it_writes(number: int) -> None:
    assert ascii_int(str(number), "n") == number


@given(st.text(max_size=25))
def test_ascii_int_accepts_only_ascii_digits(text: str) -> None:
    plain = text.isascii() and text.isdigit() and len(text) <= 19
    try:
        assert ascii_int(text, "n") == int(text) and plain
    except InvalidInput as refused:
        assert refused.field == "n" and not (plain and int(text) <= 2**63 - 1)


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner, max_size=4)
    ),
    max_leaves=12,
)


def _storable(value: Any) -> bool:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return True
    if isinstance(value, int):
        return -(2**63) <= value <= 2**63 - 1
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(_storable(v) for v in value)
    return all(_storable(v) for v in value.values())


@settings(max_examples=300, deadline=None)
@given(JSON_VALUES)
def test_check_json_refuses_exactly_what_cannot_be_stored(value: Any) -> None:
    body = json.dumps(value).encode()  # NaN, Infinity and big integers as Python writes them
    if _storable(value):
        check_json(body)
    else:
        with pytest.raises(InvalidInput) as refused:
            check_json(body)
        assert refused.value.status == 422 and refused.value.field is not None
