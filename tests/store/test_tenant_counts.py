"""The bounded counts the tenants page reads, on every backend: events up
to a cap (``count_events(cap=)``), users and live API keys per tenant in
grouped queries (``member_counts``), and a bounded list of users."""

from __future__ import annotations

import time

import pytest

from test_store import new
from tidings.core.audience import UserRecord
from tidings.store.base import ApiKeyRecord, LogQuery
from tidings.store.ports import Directory, EventLog

pytestmark = pytest.mark.asyncio


async def test_counting_events_stops_at_the_cap(store: EventLog) -> None:
    await store.append_events([new("t1") for _ in range(7)] + [new("t2")])
    query = LogQuery(tenant_ids=["t1"])
    assert await store.count_events(query) == 7
    assert await store.count_events(query, cap=5) == 5
    assert await store.count_events(query, cap=100) == 7
    assert await store.count_events(LogQuery(tenant_ids=["t2"]), cap=5) == 1
    assert await store.count_events(LogQuery(tenant_ids=["none"]), cap=5) == 0


async def test_member_counts_are_users_and_live_keys_per_tenant(store: Directory) -> None:
    now = time.time()
    for tenant in ("t1", "t2", "t3"):
        await store.put_tenant(tenant, tenant.upper(), {})
    for user in ("a", "b", "gone"):
        await store.put_user(UserRecord("t1", user, "member"))
    await store.delete_user("t1", "gone")
    await store.put_user(UserRecord("t2", "c", "member"))
    keys = [
        ApiKeyRecord("key_live", "h1" * 32, "k", frozenset({"publish"}), "t1", now),
        ApiKeyRecord(
            "key_old", "h2" * 32, "k", frozenset({"publish"}), "t1", now - 9, expires_at=now - 1
        ),
        ApiKeyRecord("key_rev", "h3" * 32, "k", frozenset({"admin"}), "t2", now),
        ApiKeyRecord("key_t2", "h4" * 32, "k", frozenset({"admin"}), "t2", now),
        ApiKeyRecord("key_glob", "h5" * 32, "k", frozenset({"admin"}), None, now),
    ]
    for record in keys:
        await store.create_api_key(record)
    await store.revoke_api_key("key_rev", now)
    counts = await store.member_counts(["t1", "t2", "t3"])
    assert counts == {"t1": (2, 1), "t2": (1, 1), "t3": (0, 0)}
    assert await store.member_counts(["t2"]) == {"t2": (1, 1)}  # only the tenants named
    assert await store.member_counts([]) == {}
    assert [u.user_id for u in await store.list_users("t1", limit=1)] == ["a"]  # bounded
    assert [u.user_id for u in await store.list_users("t1")] == ["a", "b"]
