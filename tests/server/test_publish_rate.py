"""The publish rate per API key (DESIGN §7): the token bucket on its own
(a clock under test control, hypothesis for the bound), then over real HTTP
against a server with ``TIDINGS_PUBLISH_RATE``: 429 with ``Retry-After``
and a problem body, nothing stored, batches counted by their events,
per-key overrides, and the SDK retrying with the same event id."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from support import Admin, ServerProcess, bearer, running_server, unique
from tidings.errors import RateLimited
from tidings.sdk.client import TidingsClient
from tidings.services.auth import Principal
from tidings.services.ratelimit import PublishLimiter

RATE = 3  # the server's TIDINGS_PUBLISH_RATE


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def key(rate: float | None = None, key_id: str = "key_a") -> Principal:
    return Principal(kind="key", scopes=frozenset({"publish"}), key_id=key_id, publish_rate=rate)


def test_the_bucket_admits_a_burst_then_the_rate() -> None:
    clock = Clock()
    limiter = PublishLimiter(2, clock)
    limiter.take(key(), 1)
    limiter.take(key(), 1)
    with pytest.raises(RateLimited) as refused:
        limiter.take(key(), 1)
    assert refused.value.extra["retry_after"] == 1
    limiter.take(key(key_id="key_b"), 2)  # buckets are per key
    clock.now += 0.5
    limiter.take(key(), 1)  # 0.5 s at 2/s: one token
    with pytest.raises(RateLimited):
        limiter.take(key(), 1)


def test_batches_count_their_events_and_big_ones_wait_their_turn() -> None:
    clock = Clock()
    limiter = PublishLimiter(5, clock)
    limiter.take(key(), 4)
    with pytest.raises(RateLimited):
        limiter.take(key(), 2)  # one token left: nothing taken
    limiter.take(key(), 1)
    clock.now += 10
    limiter.take(key(), 12)  # larger than the burst: admitted when full, in debt
    with pytest.raises(RateLimited) as refused:
        limiter.take(key(), 1)
    assert refused.value.extra["retry_after"] == 2  # 7 tokens owed + 1 at 5/s


def test_overrides_and_who_is_not_limited() -> None:
    limiter = PublishLimiter(1, Clock())
    for _ in range(100):
        limiter.take(key(rate=0), 10)  # 0 on the key: not limited
        limiter.take(Principal(kind="admin"), 10)  # the bootstrap admin key
    unlimited = PublishLimiter(0, Clock())
    for _ in range(100):
        unlimited.take(key(), 10)  # no default: only keys with their own rate
    with pytest.raises(RateLimited):
        for _ in range(3):
            unlimited.take(key(rate=2), 1)


@settings(max_examples=200, deadline=None)
@given(
    rate=st.sampled_from([0.5, 1.0, 3.0, 10.0]),
    steps=st.lists(
        st.tuples(st.floats(min_value=0, max_value=2), st.integers(min_value=1, max_value=4)),
        max_size=60,
    ),
)
def test_admitted_events_never_exceed_burst_plus_rate_times_time(
    rate: float, steps: list[tuple[float, int]]
) -> None:
    clock = Clock()
    start = clock.now
    limiter = PublishLimiter(rate, clock)
    admitted = 0
    largest = 0
    for pause, count in steps:
        clock.now += pause
        try:
            limiter.take(key(), count)
        except RateLimited as refused:
            assert refused.extra["retry_after"] >= 1
        else:
            admitted += count
            largest = max(largest, count)
    # the burst, what accrued since, and one batch's debt at most
    assert admitted <= rate + (clock.now - start) * rate + largest + 1e-9


# -- over HTTP ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {"TIDINGS_PUBLISH_RATE": str(RATE)}
    with running_server(tmp_path_factory.mktemp("rate"), env=env) as srv:
        yield srv


@pytest.fixture
def hub(limited: ServerProcess) -> Iterator[Admin]:
    client = Admin(limited.url)
    yield client
    client.close()


def event(tenant: str, **extra: Any) -> dict[str, Any]:
    return {"type": "qms.car.updated", "tenantId": tenant, "entityId": unique("car"), **extra}


def stored(hub: Admin, tenant: str) -> int:
    return len(hub.http.get("/api/events/log", params={"tenantId": tenant}).json()["items"])


def test_over_the_rate_is_429_with_retry_after_and_nothing_stored(
    limited: ServerProcess, hub: Admin
) -> None:
    tenant = hub.tenant()
    client = httpx.Client(base_url=limited.url, headers=bearer(hub.api_key(["publish"], tenant)))
    for _ in range(RATE):
        assert client.post("/api/events", json=event(tenant)).status_code == 202
    refused = client.post("/api/events", json=event(tenant, id="evt_refused"))
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert 1 <= int(refused.headers["retry-after"]) <= 1 + 1 // RATE
    problem = refused.json()
    assert problem["code"] == "rate_limited" and problem["status"] == 429
    assert problem["retryable"] is True
    assert stored(hub, tenant) == RATE
    time.sleep(int(refused.headers["retry-after"]))
    again = client.post("/api/events", json=event(tenant, id="evt_refused"))
    assert again.status_code == 202 and stored(hub, tenant) == RATE + 1
    client.close()


def test_a_batch_counts_its_events(limited: ServerProcess, hub: Admin) -> None:
    tenant = hub.tenant()
    client = httpx.Client(base_url=limited.url, headers=bearer(hub.api_key(["publish"], tenant)))
    batch = {"events": [event(tenant) for _ in range(RATE - 1)]}
    assert client.post("/api/events/batch", json=batch).status_code == 202
    refused = client.post("/api/events/batch", json={"events": [event(tenant), event(tenant)]})
    assert refused.status_code == 429 and refused.json()["code"] == "rate_limited"
    assert stored(hub, tenant) == RATE - 1
    client.close()


def test_keys_carry_their_own_rate(limited: ServerProcess, hub: Admin) -> None:
    tenant = hub.tenant()

    def make(rate: float, by: httpx.Client) -> httpx.Response:
        body = {"scopes": ["publish"], "tenantId": tenant, "publishRate": rate}
        return by.post("/api/admin/api-keys", json=body)

    slow, free = make(1, hub.http).json(), make(0, hub.http).json()
    assert {slow["publishRate"], free["publishRate"]} == {1, 0}
    with httpx.Client(base_url=limited.url, headers=bearer(slow["key"])) as client:
        assert client.post("/api/events", json=event(tenant)).status_code == 202
        assert client.post("/api/events", json=event(tenant)).status_code == 429
    with httpx.Client(base_url=limited.url, headers=bearer(free["key"])) as client:
        for _ in range(RATE * 3):
            assert client.post("/api/events", json=event(tenant)).status_code == 202
    for _ in range(RATE * 3):  # the bootstrap admin key is not limited
        assert hub.publish(event(tenant)).status_code == 202
    # a tenant-bound admin may lower its keys' rate, never lift or raise it
    scoped = httpx.Client(base_url=limited.url, headers=bearer(hub.api_key(["admin"], tenant)))
    for rate in (0, RATE + 1):
        refused = make(rate, scoped)
        assert refused.status_code == 403 and refused.json()["field"] == "/publishRate"
    assert make(RATE - 1, scoped).status_code == 201
    scoped.close()


def test_entity_transitions_by_keys_count_like_publishes(
    limited: ServerProcess, hub: Admin
) -> None:
    tenant = hub.tenant()
    client = httpx.Client(base_url=limited.url, headers=bearer(hub.api_key(["publish"], tenant)))
    answers = [
        client.post(f"/api/entities/ticket/{unique('tk')}/transition", json={"to": "CANCELLED"})
        for _ in range(RATE + 1)
    ]
    assert [a.status_code for a in answers] == [200] * RATE + [429]
    client.close()


def test_the_sdk_waits_out_429_and_retries_with_the_same_event_id(
    limited: ServerProcess, hub: Admin
) -> None:
    tenant = hub.tenant()
    secret = hub.api_key(["publish"], tenant)
    started = time.monotonic()
    with TidingsClient(limited.url, token=secret, max_retries=5) as sdk:
        answers = [sdk.publish(event(tenant)) for _ in range(RATE + 2)]
    assert time.monotonic() - started >= 0.9  # it waited for Retry-After at least once
    ids = [a["id"] for a in answers]
    assert len(set(ids)) == RATE + 2
    log = hub.http.get("/api/events/log", params={"tenantId": tenant}).json()["items"]
    assert sorted(e["id"] for e in log) == sorted(ids)  # each stored once


def test_the_rate_check_is_cheap() -> None:
    """The check on the publish path: well under a microsecond-scale budget
    (measured here, reported in the issue)."""
    limiter = PublishLimiter(1e9)
    principal = key()
    off = PublishLimiter(0)
    n = 200_000
    started = time.perf_counter()
    for _ in range(n):
        limiter.take(principal, 1)
    on_cost = (time.perf_counter() - started) / n
    started = time.perf_counter()
    for _ in range(n):
        off.take(principal, 1)
    off_cost = (time.perf_counter() - started) / n
    assert on_cost < 5e-6 and off_cost < 2e-6, (on_cost, off_cost)
