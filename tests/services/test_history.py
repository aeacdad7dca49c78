"""History pages against a small fake of the store's log query: who may
read what, redaction per reader, the type filter applied to unindexed
patterns, cursors, and bounded work per page."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from tidings.core.audience import UserRecord, Viewer
from tidings.core.envelope import Event
from tidings.core.patterns import TypeFilter
from tidings.errors import Forbidden
from tidings.services import history as history_module
from tidings.services.auth import OPERATOR, Principal
from tidings.services.history import SCAN_FACTOR, History, LogRequest
from tidings.store.base import LogQuery

TENANT_ADMIN = Principal(kind="key", tenant_id="t1", scopes=frozenset({"admin"}))
PUBLISHER = Principal(kind="key", tenant_id="t1", scopes=frozenset({"publish"}))
ANN = UserRecord("t1", "ann", "staff")
SENSITIVE = {"data.email": "pii.read"}


def event(position: int, type_: str = "qms.car.opened", audiences: tuple[str, ...] = ()) -> Event:
    return Event(
        id=f"evt_{position}",
        type=type_,
        tenant_id="t1",
        entity_type=None,
        entity_id=None,
        action="opened",
        timestamp="2026-01-01T00:00:00Z",
        actor=None,
        metadata={},
        data={"email": "a@example.com", "n": position},
        audiences=audiences,
        schema="1",
        position=position,
    )


@dataclass
class FakeLog:
    events: list[Event]
    queries: list[LogQuery] = field(default_factory=list)

    async def query_events(self, query: LogQuery) -> list[Event]:
        """Newest first below ``before``, like the store (the filters on
        types are the store's to apply; this fake applies none)."""
        self.queries.append(query)
        rows = sorted(self.events, key=lambda e: -e.position)
        if query.before is not None:
            rows = [e for e in rows if e.position < query.before]
        return rows[: query.limit]


def history_over(events: list[Event], hub: Any = None) -> tuple[History, FakeLog]:
    log = FakeLog(events)
    sensitive: dict[str, Any] = {"qms.car.opened": SENSITIVE}
    history = History(
        log,  # type: ignore[arg-type]
        hub=hub,  # pages never touch the hub; a tail reads its position
        sensitive=lambda _tenant, type_: sensitive.get(type_, {}),
        max_replay=10,
    )
    return history, log


def test_readers_are_users_or_admins_of_a_tenant_in_scope() -> None:
    assert History.reader(TENANT_ADMIN, None) == Viewer.operator("t1")
    assert History.reader(OPERATOR, "t2") == Viewer.operator("t2")
    with pytest.raises(Forbidden):
        History.reader(TENANT_ADMIN, "t2")
    with pytest.raises(Forbidden):
        History.reader(PUBLISHER, None)


async def test_a_page_is_redacted_for_its_reader_and_filtered_by_audience() -> None:
    history, _ = history_over(
        [event(1, audiences=("user:ann",)), event(2, audiences=("user:bob",))]
    )
    user = Viewer.for_user(ANN, {"staff": frozenset()})
    page = await history.page(user, LogRequest(types=TypeFilter.parse(None)))
    assert [item["position"] for item in page.items] == [1]
    assert "email" not in page.items[0]["data"]  # no pii.read
    admin_page = await history.page(Viewer.operator("t1"), LogRequest(types=TypeFilter.parse(None)))
    assert [item["data"]["email"] for item in admin_page.items] == ["a@example.com"] * 2
    assert page.next_cursor is None  # the log is exhausted


async def test_a_full_page_ends_with_a_cursor_to_continue_from() -> None:
    history, log = history_over([event(p, audiences=("user:ann",)) for p in range(1, 6)])
    page = await history.page(Viewer.operator("t1"), LogRequest(TypeFilter.parse(None), limit=2))
    assert ([i["position"] for i in page.items], page.next_cursor) == ([5, 4], 4)
    more = LogRequest(TypeFilter.parse(None), cursor=page.next_cursor, limit=2)
    page = await history.page(Viewer.operator("t1"), more)
    assert [i["position"] for i in page.items] == [3, 2]
    assert log.queries[-1].before == 4


async def test_patterns_the_store_cannot_index_are_filtered_with_bounded_work() -> None:
    history, log = history_over([event(p, type_="other.thing") for p in range(1, 200)])
    types = TypeFilter.parse("qms.*.opened")  # a middle wildcard: not indexed
    page = await history.page(Viewer.operator("t1"), LogRequest(types, limit=2))
    assert log.queries[0].types == () and log.queries[0].type_prefixes == ()
    assert page.items == [] and page.next_cursor is not None  # stopped early, can go on
    assert sum(q.limit for q in log.queries) == 2 * SCAN_FACTOR  # then it stops


class FakeHub:
    """The one thing a tail reads of the hub: its position."""

    def __init__(self, position: int) -> None:
        self.position = position


def tail_over(events: list[Event]) -> tuple[History, FakeLog, FakeHub]:
    hub = FakeHub(max(e.position for e in events))
    history, log = history_over(events, hub)
    return history, log, hub


TAIL = LogRequest(types=TypeFilter(), limit=5)
SEEN = ("user:ann",)


async def test_a_tail_reads_nothing_when_the_hub_has_nothing_new() -> None:
    history, log, hub = tail_over([event(p, audiences=SEEN) for p in range(1, 11)])
    page = await history.tail(Viewer.operator("t1"), TAIL, hub.position)
    assert page.items == [] and page.after == hub.position and not page.skipped
    assert log.queries == []


async def test_watchers_of_one_tail_share_its_newest_page(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr("tidings.services.history.time.monotonic", lambda: now[0])
    history, log, hub = tail_over([event(p, audiences=SEEN) for p in range(1, 21)])
    viewer = Viewer.operator("t1")
    behind = await history.tail(viewer, TAIL, 8)  # 12 new rows, 5 shown: the gap said
    near = await history.tail(viewer, TAIL, 17)  # a second watcher, nearer the head
    assert [i["position"] for i in behind.items] == [20, 19, 18, 17, 16] and behind.skipped
    assert [i["position"] for i in near.items] == [20, 19, 18] and not near.skipped
    assert behind.after == near.after == 20 and len(log.queries) == 1
    log.events += [event(21, audiences=SEEN), event(22, audiences=SEEN)]
    hub.position = 22
    stale = await history.tail(viewer, TAIL, 20)  # within the shared second: not read again
    assert stale.items == [] and stale.after == 20 and len(log.queries) == 1
    now[0] += history_module.TAIL_SHARED_S
    fresh = await history.tail(viewer, TAIL, 20)
    assert [i["position"] for i in fresh.items] == [22, 21] and fresh.after == 22
    assert len(log.queries) == 2
    other = await history.tail(Viewer.operator("t2"), TAIL, None)  # another reader: its own page
    assert len(log.queries) > 2 and other.items == [] and other.after == 22
