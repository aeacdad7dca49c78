"""Nesting depth at ingest (issue 12, defect 1): data, metadata and actor
nest at most ``max_event_depth`` levels; anything deeper - a few levels
past the limit, past what orjson can write (254), past what msgspec and
orjson can read (~1,000), 10,000 levels - is a 422 problem naming the first
too-deep spot, on the single and the batch endpoint, through the fast and
the exact decoder, and nothing is stored. After each hostile publish,
other tenants still publish and their subscribers still receive."""

from __future__ import annotations

import json
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from support import ADMIN_KEY, Admin, ServerProcess, bearer, sse
from tidings.catalog import load_catalog
from tidings.core.envelope import deep_pointer, depth_error, shallow
from tidings.errors import InvalidInput
from tidings.services.auth import Principal
from tidings.services.ingest import Ingest

LIMIT = 32  # the default max_event_depth
OPERATOR = Principal(kind="admin", scopes=frozenset({"admin", "publish"}))


def nested(levels: int, key: str = "k") -> Any:
    """``levels`` containers, alternating object and array, outermost an
    object holding a sensitive-looking leaf at the bottom."""
    value: Any = {"email": "x@example.com"}
    for remaining in range(levels - 1, 0, -1):
        value = {key: value} if remaining % 2 else [value]
    return value


def deep_text(levels: int) -> str:
    """A JSON object nesting ``levels`` levels, as text (no encoder can
    write 10,000 levels)."""
    return '{"k":' * (levels - 1) + "{}" + "}" * (levels - 1)


def envelope(tenant: str, **members: Any) -> dict[str, Any]:
    return {"type": "qms.document.created", "tenantId": tenant, "entityId": "d1", **members}


def raw_envelope(tenant: str, member: str, text: str) -> str:
    return f'{{"type": "qms.document.created", "tenantId": "{tenant}", "{member}": {text}}}'


def segments(pointer: str) -> list[str]:
    return pointer.split("/")[1:]


# -- in-process: the checks themselves -------------------------------------------


def test_the_limit_is_inclusive_and_names_the_first_spot_past_it() -> None:
    ingest = Ingest(lambda _t: load_catalog(), max_event_bytes=1 << 20)
    for member in ("data", "metadata", "actor"):
        fits = envelope("t1", **{member: nested(LIMIT)})
        ingest.prepare_body(orjson.dumps(fits), OPERATOR, batch=False)
        too_deep = envelope("t1", **{member: nested(LIMIT + 1)})
        with pytest.raises(InvalidInput) as caught:
            ingest.prepare_body(orjson.dumps(too_deep), OPERATOR, batch=False)
        assert caught.value.status == 422
        field = caught.value.field or ""
        assert segments(field)[0] == member and len(segments(field)) == LIMIT + 1


@settings(max_examples=60, deadline=None)
@given(levels=st.integers(1, 80), member=st.sampled_from(["data", "metadata", "actor"]))
def test_the_raw_scan_finds_the_spot_the_walk_finds(levels: int, member: str) -> None:
    """The scan used past what decoders read agrees with the walk over
    decoded values, for every depth around the limit."""
    value = nested(levels, key="a/b~c")
    body = orjson.dumps(envelope("t1", **{member: value}))
    walked = depth_error(member, value, LIMIT)
    scanned = deep_pointer(body, LIMIT + 2)
    assert (walked.field if walked else "") == scanned
    assert shallow(body, LIMIT) <= (walked is None)  # the cheap bound never lies


@pytest.mark.parametrize("levels", [33, 300, 1_100, 10_000])
@pytest.mark.parametrize("batch", [False, True])
def test_every_path_gives_the_same_problem(levels: int, batch: bool) -> None:
    """Fast path (msgspec), exact path (orjson), and past both (the scan)."""
    ingest = Ingest(lambda _t: load_catalog(), max_event_bytes=1 << 24)
    one = raw_envelope("t1", "data", deep_text(levels))
    fine = json.dumps(envelope("t1", data={"x": 1}))
    body = f'{{"events": [{fine}, {one}]}}' if batch else one
    with pytest.raises(InvalidInput) as caught:
        ingest.prepare_body(body.encode(), OPERATOR, batch=batch, max_batch=10)
    prefix = ["events", "1", "data"] if batch else ["data"]
    field = segments(caught.value.field or "")
    assert caught.value.status == 422
    assert field == prefix + ["k"] * LIMIT


def test_the_limit_is_a_setting_with_a_ceiling() -> None:
    ingest = Ingest(lambda _t: load_catalog(), max_event_bytes=1 << 20, max_depth=4)
    with pytest.raises(InvalidInput):
        ingest.prepare_body(orjson.dumps(envelope("t1", data=nested(5))), OPERATOR, batch=False)
    for bad in (0, 201):
        with pytest.raises(InvalidInput) as caught:
            Ingest(lambda _t: load_catalog(), max_event_bytes=1, max_depth=bad)
        assert caught.value.field == "max_event_depth"


# -- over HTTP ----------------------------------------------------------------------


def hostile_bodies(tenant: str) -> list[tuple[str, str, list[str]]]:
    """(endpoint, body, expected pointer prefix) - several variants."""
    pii = {"reporterEmail": "rana@example.com"}  # a sensitive field of the type
    deep = json.dumps(nested(300))
    fine = json.dumps(envelope(tenant, data={"x": 1}))
    sensitive = raw_envelope(tenant, "data", deep)[:-1] + f', "metadata": {json.dumps(pii)}}}'
    return [
        ("/api/events", sensitive, ["data"]),
        ("/api/events", raw_envelope(tenant, "data", deep), ["data"]),
        ("/api/events", raw_envelope(tenant, "metadata", deep), ["metadata"]),
        ("/api/events", raw_envelope(tenant, "actor", deep), ["actor"]),
        ("/api/events", raw_envelope(tenant, "data", json.dumps(nested(40))), ["data"]),
        ("/api/events", raw_envelope(tenant, "data", deep_text(10_000)), ["data"]),
        ("/api/events/batch", f'{{"events": [{fine}, {sensitive}]}}', ["events", "1", "data"]),
        (
            "/api/events/batch",
            f"[{fine}, {fine}, {raw_envelope(tenant, 'metadata', deep_text(10_000))}]",
            ["events", "2", "metadata"],
        ),
    ]


async def test_too_deep_publishes_are_refused_and_the_hub_carries_on(
    server: ServerProcess, admin: Admin
) -> None:
    hostile, bystander = admin.tenant(), admin.tenant()
    for tenant in (hostile, bystander):
        admin.role("reader", ["qms.read"], tenant_id=tenant)  # no qms.pii.read: redacted
    watcher = admin.user(hostile, "watcher", "reader")
    other = admin.user(bystander, "other", "reader")
    async with sse(server.url, watcher) as hostile_stream, sse(server.url, other) as stream:
        for path, body, prefix in hostile_bodies(hostile):
            response = admin.http.post(
                path, content=body, headers={"content-type": "application/json"}, timeout=10
            )
            assert response.status_code == 422, (path, response.text[:300])
            assert response.headers["content-type"] == "application/problem+json"
            problem = response.json()
            assert segments(problem["field"])[: len(prefix)] == prefix, problem["field"][:80]
            assert len(segments(problem["field"])) == len(prefix) + LIMIT
            # Every other tenant still publishes and still receives, at once.
            sent = admin.publish(envelope(bystander, data={"n": 1}), timeout=5)
            assert sent.status_code == 202, sent.text
            (got,) = await stream.events(1)
            assert got["position"] == sent.json()["position"]
        fine = admin.publish(envelope(hostile, metadata={"reporterEmail": "r@example.com"}))
        assert fine.status_code == 202
        (seen,) = await hostile_stream.events(1)
        assert seen["position"] == fine.json()["position"] and seen["metadata"] == {}
    stored = admin.http.get("/api/events/log", params={"tenantId": hostile}).json()["items"]
    assert [e["position"] for e in stored] == [fine.json()["position"]]  # nothing else stored


def test_a_body_past_every_decoder_is_a_problem_not_plain_text(server: ServerProcess) -> None:
    """Not even valid JSON past 10,000 levels: still a problem document."""
    body = '{"type": "qms.car.updated", "data": ' + "[" * 20_000
    response = httpx.post(
        f"{server.url}/api/events",
        content=body,
        headers={**bearer(ADMIN_KEY), "content-type": "application/json"},
    )
    assert response.status_code in (400, 422)
    assert response.headers["content-type"] == "application/problem+json"


@settings(max_examples=80, deadline=None)
@given(
    depths=st.lists(st.integers(0, 40), min_size=1, max_size=6),
    member=st.sampled_from(["data", "metadata", "actor"]),
    padding=st.integers(0, 3),
)
def test_the_batch_bound_never_lets_a_too_deep_event_through(
    depths: list[int], member: str, padding: int
) -> None:
    """Events of several depths (0: the member left out), with flat
    siblings: the cheap bound says "fits" only when every event does."""
    from tidings.core.envelope import check_depth, decode_drafts, drafts_fit

    events = []
    for depth in depths:
        members: dict[str, Any] = {"data": {"flat": 1}} if padding else {}
        if depth:
            members[member] = nested(depth)
        if padding > 1:
            members["audiences"] = ["role:a"]
        events.append(envelope("t1", **members))
    body = orjson.dumps({"events": events})
    drafts = decode_drafts(body, batch=True, default_tenant=None)
    assert drafts is not None
    deepest = max(depths)
    if drafts_fit(body, drafts, LIMIT):
        assert deepest <= LIMIT
        for draft in drafts:
            check_depth(draft, LIMIT)
    assert drafts_fit(body, drafts, LIMIT) or deepest > 0  # flat batches always fit
