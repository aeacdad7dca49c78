"""Random transition sequences through the real service and store (SQLite
and PostgreSQL): the state is only ever reached by allowed moves, the
lifecycle log replays to the stored state, and every accepted transition
emitted exactly one event."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support import unique
from tidings.config import Settings
from tidings.core.statemachine import TENANT_LIFECYCLE, replay
from tidings.errors import Conflict
from tidings.node import Tidings
from tidings.store.base import LogQuery

STATES = sorted(TENANT_LIFECYCLE.states)


@pytest.fixture
def node(database_url: str) -> Iterator[tuple[asyncio.AbstractEventLoop, Tidings]]:
    loop = asyncio.new_event_loop()
    tidings = Tidings(Settings(database_url=database_url, admin_key="k" * 32))
    loop.run_until_complete(tidings.start())
    yield loop, tidings
    loop.run_until_complete(tidings.stop())
    loop.close()


async def run_sequence(tidings: Tidings, moves: list[str]) -> dict[str, Any]:
    tenant = unique("ten")
    await tidings.store.put_tenant(tenant, "t", {})
    accepted = 0
    for to in moves:
        try:
            await tidings.transition_tenant(tenant, to, trigger_source="system")
            accepted += 1
        except Conflict:
            pass
    record = await tidings.store.get_tenant(tenant)
    log = await tidings.store.lifecycle("tenant", tenant, tenant)
    events = await tidings.store.query_events(LogQuery(tenant_ids=[tenant], limit=1000))
    return {
        "state": record.state if record else None,
        "log": log,
        "events": events,
        "accepted": accepted,
    }


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(moves=st.lists(st.sampled_from(STATES), max_size=8))
def test_random_tenant_lifecycles_hold_their_invariants(
    node: tuple[asyncio.AbstractEventLoop, Tidings], moves: list[str]
) -> None:
    loop, tidings = node
    result = loop.run_until_complete(run_sequence(tidings, moves))
    log = result["log"]
    assert log[0]["from_state"] is None and log[0]["to_state"] == "CREATED"
    rows = [(r["from_state"], r["to_state"]) for r in log[1:]]
    assert replay(TENANT_LIFECYCLE, rows) == result["state"]  # only allowed moves, ending here
    assert len(rows) == result["accepted"]
    assert len(result["events"]) == result["accepted"]  # exactly one event per accepted move
    assert [r["event_id"] for r in log[1:]] == [e.id for e in result["events"]]
