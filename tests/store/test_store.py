"""The store contract, written once and run against every implementation:
SQLite and a real PostgreSQL server. Each test takes the store as the role
(``tidings.store.ports``) it exercises; SQLite's internals are pinned in
``test_sqlite_internals.py``."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

from tidings.core.audience import UserRecord
from tidings.core.envelope import Event
from tidings.core.ids import new_event_id
from tidings.errors import Conflict
from tidings.store.base import ApiKeyRecord, LifecycleChange, LogQuery, NewEvent
from tidings.store.migrate import upgrade
from tidings.store.ports import Directory, EventLog, NotificationStore, Store
from tidings.store.schema import ONLY_ON, metadata
from tidings.store.sql import SQLStore, normalize_url

pytestmark = pytest.mark.asyncio


def new(
    tenant: str = "t1",
    type_: str = "qms.car.updated",
    *,
    id: str | None = None,
    key: str | None = None,
    entity: str = "c1",
    created: float | None = None,
) -> NewEvent:
    event = Event(
        position=0,
        id=id or new_event_id(),
        tenant_id=tenant,
        type=type_,
        entity_type="car",
        entity_id=entity,
        action="UPDATED",
        timestamp="2024-05-16T14:23:41.123Z",
        actor=None,
        metadata={},
        data={"x": 1},
        audiences=("permission:qms.read",),
        schema="payload.QmsCarUpdated.v1",
    )
    return NewEvent(
        event=event, idempotency_key=key, created_at=created or time.time(), generated_id=id is None
    )


async def test_appends_get_consecutive_positions_in_order(store: EventLog) -> None:
    outcome = await store.append_events([new(), new(), new()])
    positions = [r.position for r in outcome.results]
    assert positions == [1, 2, 3] and [e.position for e in outcome.stored] == positions
    assert [e.position for e in await store.read_events(0, 10)] == [1, 2, 3]
    assert [e.position for e in await store.read_events(2, 10)] == [3]
    assert await store.head_position() == 3
    stored = (await store.read_events(0, 1))[0]
    assert stored == outcome.stored[0]


async def test_a_large_append_stores_every_row_whole_and_in_order(store: EventLog) -> None:
    """250 events: SQLite inserts 100 rows per statement and the rest one by one."""
    batch = [new(entity=f"c{i}", key=f"k{i}" if i % 7 == 0 else None) for i in range(250)]
    outcome = await store.append_events(batch)
    assert [r.position for r in outcome.results] == list(range(1, 251))
    stored = await store.read_events(0, 1000)
    assert stored == [n.event for n in batch]
    assert [e.entity_id for e in stored] == [f"c{i}" for i in range(250)]
    again = await store.append_events([new(key="k14"), new(id=batch[249].event.id)])
    assert [(r.position, r.duplicate) for r in again.results] == [(15, True), (250, True)]


async def test_producer_ids_and_idempotency_keys_are_stored_once(store: EventLog) -> None:
    first = await store.append_events([new(id="evt_mine"), new(key="k1")])
    again = await store.append_events(
        [new(id="evt_mine"), new(key="k1"), new(id="evt_mine", tenant="t2")]
    )
    assert [r.duplicate for r in again.results] == [True, True, False]
    assert [r.position for r in again.results[:2]] == [r.position for r in first.results]
    assert len(again.stored) == 1
    within = await store.append_events([new(id="evt_twice"), new(id="evt_twice")])
    assert within.results[0].position == within.results[1].position and within.results[1].duplicate


async def test_users_roles_and_tombstones(store: Directory) -> None:
    await store.put_tenant("t1", "T1", {"a": 1})
    user = UserRecord(
        "t1",
        "u1",
        "manager",
        grants=frozenset({"g"}),
        revokes=frozenset({"r"}),
        resources=frozenset({"x"}),
    )
    await store.put_user(user)
    assert await store.get_user("t1", "u1") == user
    await store.put_role("manager", ["a", "b"], None)
    await store.put_role("manager", ["c"], "t1")
    await store.put_role("standard", ["s"], None)
    assert await store.role_defaults("t1") == {
        "manager": frozenset({"c"}),
        "standard": frozenset({"s"}),
    }
    assert await store.role_defaults("t2") == {
        "manager": frozenset({"a", "b"}),
        "standard": frozenset({"s"}),
    }
    assert await store.delete_user("t1", "u1")
    assert await store.get_user("t1", "u1") is None and await store.user_was_deleted("t1", "u1")
    assert not await store.delete_user("t1", "u1")
    await store.put_user(user)  # re-created: the tombstone goes
    assert not await store.user_was_deleted("t1", "u1")


async def test_api_keys_and_single_use_tickets(store: Directory) -> None:
    record = ApiKeyRecord("key_1", "h" * 64, "k", frozenset({"publish"}), "t1", time.time())
    await store.create_api_key(record)
    assert await store.get_api_key("h" * 64) == record
    await store.create_ticket("tk", "t1", "u1", time.time() + 60, session_expires_at=123.0)
    assert await store.consume_ticket("tk", time.time()) == ("t1", "u1", 123.0)
    assert await store.consume_ticket("tk", time.time()) is None
    await store.create_ticket("old", "t1", "u1", time.time() - 1)
    assert await store.consume_ticket("old", time.time()) is None


async def test_history_queries(store: EventLog) -> None:
    now = time.time()
    await store.append_events(
        [
            new("t1", "qms.car.updated", entity="a", created=now - 100),
            new("t1", "tasks.assignment.created", entity="b", created=now - 50),
            new("t2", "qms.car.updated", entity="a", created=now),
        ]
    )

    async def positions(**kw: object) -> list[int]:
        return [
            e.position for e in await store.query_events(LogQuery(**{"tenant_ids": ["t1"], **kw}))
        ]  # type: ignore[arg-type]

    assert await positions() == [1, 2]
    assert await positions(tenant_ids=None) == [1, 2, 3]
    assert await positions(types=["tasks.assignment.created"]) == [2]
    assert await positions(type_prefixes=["qms."]) == [1]
    assert await positions(entity_id="a") == [1]
    assert await positions(since=now - 60) == [2]
    assert await positions(until=now - 60) == [1]
    assert await positions(newest_first=True) == [2, 1]
    assert await positions(after=1) == [2]
    assert await positions(before=2) == [1]


async def test_entity_history_is_whole_whether_or_not_the_index_has_caught_up(
    store: EventLog,
) -> None:
    """SQLite indexes entities in bulk behind the log (PostgreSQL in the
    append): a query must see the same events before and after."""

    def about(tenant: str, entity: str, entity_type: str | None = "car") -> NewEvent:
        n = new(tenant, entity=entity)
        n.event.entity_type = entity_type
        return n

    await store.append_events(
        [about("t1", "a"), about("t1", "b"), about("t2", "a"), about("t1", "a", None)]
    )

    async def history(**kw: object) -> tuple[list[int], int]:
        query = LogQuery(**kw)  # type: ignore[arg-type]
        found = [e.position for e in await store.query_events(query)]
        return found, await store.count_events(query)

    async def check(extra: list[int]) -> None:
        assert await history(tenant_ids=["t1"], entity_id="a") == ([1, 4, *extra], 2 + len(extra))
        assert await history(tenant_ids=["t1"], entity_type="car", entity_id="a") == (
            [1, *extra],
            1 + len(extra),
        )
        assert await history(tenant_ids=["t2"], entity_id="a") == ([3], 1)
        assert await history(tenant_ids=None, entity_id="a") == ([1, 3, 4, *extra], 3 + len(extra))
        assert await history(tenant_ids=["t1"], entity_type="car") == (
            [1, 2, *extra],
            2 + len(extra),
        )
        newest = await history(tenant_ids=["t1"], entity_id="a", newest_first=True, limit=2)
        assert newest[0] == [*reversed(extra), 4, 1][:2]
        assert await history(tenant_ids=["t1"], entity_id="nobody") == ([], 0)

    await check([])  # all in the unindexed tail
    await store.index_entities()
    await check([])  # all in the index
    await store.append_events([about("t1", "a"), about("t2", "b")])
    await check([5])  # index and tail together


async def test_positions_are_never_reused_after_retention_empties_the_log(
    store: EventLog,
) -> None:
    old = time.time() - 1000
    await store.append_events([new("t1", created=old), new("t1", created=old)])
    await store.index_entities()
    assert await store.prune_events("t1", time.time(), batch=10) == 2
    assert await store.read_events(0, 10) == []
    outcome = await store.append_events([new("t1", entity="c1")])
    assert [r.position for r in outcome.results] == [3]
    found = await store.query_events(LogQuery(tenant_ids=["t1"], entity_id="c1"))
    assert [e.position for e in found] == [3]


async def test_concurrent_writers_commit_in_position_order(
    database_url: str, store: EventLog
) -> None:
    """Two store instances (as two processes would) append concurrently
    while a tailer follows ``read_events(after=last)``: it must see every
    event, i.e. no position ever becomes visible below one it passed."""
    other = SQLStore(database_url)
    await other.open()
    done = asyncio.Event()
    seen: list[int] = []

    async def writer(target: EventLog) -> None:
        for _ in range(25):
            await target.append_events([new(), new()])

    async def tailer() -> None:
        last = 0
        while True:
            finished = done.is_set()
            batch = await store.read_events(last, 1000)
            seen.extend(e.position for e in batch)
            last = seen[-1] if seen else 0
            if finished and not batch:
                return
            await asyncio.sleep(0)

    tail = asyncio.create_task(tailer())
    await asyncio.gather(*(writer(s) for s in (store, other, store, other)))
    done.set()
    await tail
    await other.close()
    assert seen == list(range(1, 201))


async def test_migrations_are_idempotent_and_match_the_models(database_url: str) -> None:
    await upgrade(database_url)
    await upgrade(database_url)  # a second run changes nothing
    engine = create_async_engine(normalize_url(database_url))
    dialect = engine.dialect.name

    def here(obj: Any, _name: Any, _type: Any, reflected: bool, _other: Any) -> bool:
        """Objects of this backend only (schema.ONLY_ON)."""
        return reflected or obj.info.get(ONLY_ON, dialect) == dialect

    async with engine.connect() as conn:
        diff = await conn.run_sync(
            lambda c: compare_metadata(
                MigrationContext.configure(c, opts={"include_object": here}), metadata
            )
        )
    await engine.dispose()
    assert diff == []
    entity_tables = {"entity_index", "log_marks"}
    only_sqlite = {t.name for t in metadata.tables.values() if t.info.get(ONLY_ON) == "sqlite"}
    assert only_sqlite == entity_tables


async def test_retention_prunes_in_batches_and_moves_the_horizon(store: EventLog) -> None:
    now = time.time()
    await store.append_events(
        [new("t1", created=now - 1000) for _ in range(5)] + [new("t2", created=now - 1000)]
    )
    await store.append_events([new("t1", created=now)])
    assert await store.log_horizon(["t1"]) == 0
    assert await store.prune_events("t1", now - 10, batch=3) == 3
    assert await store.log_horizon(["t1"]) == 3
    assert await store.prune_events("t1", now - 10, batch=3) == 2
    assert await store.prune_events("t1", now - 10, batch=3) == 0
    assert await store.log_horizon(["t1"]) == 5 and await store.log_horizon(["t2"]) == 0
    assert await store.log_horizon(None) == 5
    assert [e.position for e in await store.read_events(0, 10)] == [6, 7]


async def test_notifications_are_scoped_to_their_user(store: NotificationStore) -> None:
    from tidings.core.ids import new_monotonic_ulid
    from tidings.store.base import NotificationRecord

    def note(user: str) -> NotificationRecord:
        return NotificationRecord(
            "ntf_" + new_monotonic_ulid(), "t1", user, "x", "title", "", None, None, time.time()
        )

    a1, a2, b1 = note("a"), note("a"), note("b")
    for record in (a1, a2, b1):
        await store.create_notification(record)
    assert [
        n.id
        for n in await store.list_notifications("t1", "a", unread_only=False, before=None, limit=10)
    ] == [a2.id, a1.id]
    assert await store.owned_notifications("t1", "a", [a1.id, b1.id]) == {a1.id}
    assert await store.mark_read("t1", "a", [a1.id]) == 1
    assert await store.unread_count("t1", "a") == 1 and await store.unread_count("t1", "b") == 1
    assert await store.mark_read("t1", "a", None) == 1
    assert await store.unread_count("t1", "a") == 0
    assert await store.list_notifications("t1", "a", unread_only=True, before=None, limit=10) == []


async def test_the_duplicate_check_spans_many_queries(store: EventLog) -> None:
    """More named events than one duplicate-check query takes (IN_CHUNK):
    every one is found again, by id and by key."""
    from tidings.store.append import IN_CHUNK

    count = 2 * IN_CHUNK + 50
    first = await store.append_events([new(id=f"evt_{i}", key=f"key_{i}") for i in range(count)])
    by_id = await store.append_events([new(id=f"evt_{i}") for i in range(count)])
    by_key = await store.append_events([new(key=f"key_{i}") for i in range(count)])
    original = [r.position for r in first.results]
    for again in (by_id, by_key):
        assert all(r.duplicate for r in again.results) and again.stored == []
        assert [r.position for r in again.results] == original
    found = await store.events_by_id("t1", [f"evt_{i}" for i in range(count)])
    assert sorted(e.position for e in found) == original


async def test_transitions_are_compare_and_set(store: Store) -> None:
    """A transition from a state the entity is no longer in (or a second
    "first" transition) raises Conflict and changes nothing; the winner's
    state, history row and event commit together."""
    change = LifecycleChange("OPEN", "r", "u1", "user")
    entity = ("ticket", "t1", "k1")
    event = new(entity="k1")
    done = await store.transition_entity(entity, "NEW", change, event, exists=False)
    assert [r.position for r in done.results] == [1]
    with pytest.raises(Conflict):  # someone created it first
        await store.transition_entity(entity, "NEW", change, new(), exists=False)
    with pytest.raises(Conflict):  # it is OPEN, not NEW
        await store.transition_entity(
            entity, "NEW", LifecycleChange("CLOSED", None, None, "user"), new(), exists=True
        )
    closed = LifecycleChange("CLOSED", None, None, "user")
    await store.transition_entity(entity, "OPEN", closed, None, exists=True)
    assert await store.entity_state(*entity) == "CLOSED"
    history = await store.lifecycle(*entity)
    assert [(h["from_state"], h["to_state"]) for h in history] == [
        ("NEW", "OPEN"),
        ("OPEN", "CLOSED"),
    ]
    assert history[0]["event_id"] == event.event.id
    assert await store.head_position() == 1  # the losers appended nothing

    await store.put_tenant("t1", "T1", {})
    with pytest.raises(Conflict):
        await store.transition_tenant("t1", "ACTIVE", change, new())
    await store.transition_tenant(
        "t1", "CREATED", LifecycleChange("ACTIVE", None, None, "user"), None
    )
    tenant = await store.get_tenant("t1")
    assert tenant is not None and tenant.state == "ACTIVE"
    assert [h["to_state"] for h in await store.lifecycle("tenant", "t1", "t1")] == [
        "CREATED",
        "ACTIVE",
    ]
