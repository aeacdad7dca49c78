"""The lifecycle use cases against small fakes of the store's lifecycle
methods and of the node's ports: a move is authorized first, recorded with
its event, handed to the feed, and (for a tenant) applied by its control
message; a timeline shows a user only the rows whose event it may see."""

from __future__ import annotations

from typing import Any

import pytest

from tidings.core.audience import UserRecord, Viewer
from tidings.core.envelope import Event
from tidings.errors import Conflict, Forbidden, InvalidInput, NotFound
from tidings.services.auth import OPERATOR, Principal
from tidings.services.lifecycle import Lifecycle
from tidings.store.base import AppendOutcome, AppendResult, LifecycleChange, TenantRecord

TENANT_ADMIN = Principal(kind="key", tenant_id="t1", scopes=frozenset({"admin"}), key_id="key_a")
GLOBAL_ADMIN = Principal(kind="key", scopes=frozenset({"admin"}), key_id="key_g")
STAFF = UserRecord("t1", "ann", "staff")
USER = Principal(
    kind="user",
    tenant_id="t1",
    user=STAFF,
    viewer=Viewer.for_user(STAFF, {"staff": frozenset()}),
)
MACHINE = {
    "states": ["OPEN", "DONE"],
    "initial": "OPEN",
    "transitions": {"OPEN": ["DONE"]},
    "events": {"DONE": "ticket.done"},
}


class FakeLifecycles:
    def __init__(self) -> None:
        self.tenants = {"t1": TenantRecord("t1", "one", "ACTIVE", {}, 0.0, 0.0)}
        self.machines: dict[str, dict[str, Any]] = {}
        self.rows: list[dict[str, Any]] = []
        self.events: list[Event] = []
        self.writes: list[tuple[Any, ...]] = []

    async def get_tenant(self, tenant_id: str) -> TenantRecord | None:
        return self.tenants.get(tenant_id)

    async def transition_tenant(
        self, tenant_id: str, from_state: str, change: LifecycleChange, event: Any
    ) -> AppendOutcome:
        self.writes.append(("tenant", tenant_id, from_state, change.to_state, event))
        return AppendOutcome([AppendResult("evt_1", 7)], [])

    async def put_state_machine(self, entity_type: str, spec: Any) -> None:
        self.writes.append(("machine", entity_type))
        self.machines[entity_type] = spec

    async def get_state_machine(self, entity_type: str) -> dict[str, Any] | None:
        return self.machines.get(entity_type)

    async def entity_state(self, entity_type: str, tenant_id: str, entity_id: str) -> None:
        return None

    async def transition_entity(
        self, entity: Any, from_state: str, change: LifecycleChange, event: Any, *, exists: bool
    ) -> AppendOutcome:
        self.writes.append(("entity", entity, from_state, change.to_state, exists))
        return AppendOutcome([], [])

    async def lifecycle(self, entity_type: str, tenant_id: str, entity_id: str) -> list[Any]:
        return self.rows

    async def events_by_id(self, tenant_id: str, ids: Any) -> list[Event]:
        return [e for e in self.events if e.id in ids]


class Ports:
    """The node's side: what was prepared, committed, admitted, taken, sent."""

    def __init__(self) -> None:
        self.log: list[tuple[Any, ...]] = []

    def prepare(self, envelope: Any, principal: Principal) -> Any:
        self.log.append(("prepare", envelope["type"], principal))
        return ("prepared", envelope)

    def committed(self, outcome: AppendOutcome) -> None:
        self.log.append(("committed", outcome.results))

    async def admit(self, tenant_id: str) -> None:
        self.log.append(("admit", tenant_id))

    def take(self, principal: Principal, count: int) -> None:
        self.log.append(("take", principal.key_id, count))

    async def control(self, kind: str, **fields: Any) -> None:
        self.log.append(("control", kind, fields))


@pytest.fixture
def store() -> FakeLifecycles:
    return FakeLifecycles()


@pytest.fixture
def ports() -> Ports:
    return Ports()


@pytest.fixture
def lifecycle(store: FakeLifecycles, ports: Ports) -> Lifecycle:
    return Lifecycle(
        store,  # type: ignore[arg-type]
        prepare=ports.prepare,
        committed=ports.committed,
        admit=ports.admit,
        take=ports.take,
        control=ports.control,
    )


async def test_a_tenant_move_is_recorded_with_its_event_then_applied(
    lifecycle: Lifecycle, store: FakeLifecycles, ports: Ports
) -> None:
    move, event = await lifecycle.transition_tenant(GLOBAL_ADMIN, "t1", "SUSPENDED", reason="r")
    assert (move.from_state, move.to_state, event) == (
        "ACTIVE",
        "SUSPENDED",
        AppendResult("evt_1", 7),
    )
    ((kind, tenant, before, after, prepared),) = store.writes
    assert (kind, tenant, before, after) == ("tenant", "t1", "ACTIVE", "SUSPENDED")
    data = prepared[1]["data"]
    assert (data["triggeredBy"], data["reason"], data["newState"]) == ("key_g", "r", "SUSPENDED")
    assert ports.log == [
        ("prepare", "ON_TENANT_SUSPENDED", OPERATOR),
        ("committed", [AppendResult("evt_1", 7)]),
        ("control", "tenant_changed", {"tenant": "t1", "state": "SUSPENDED"}),
    ]


async def test_tenant_moves_are_for_global_credentials_only(
    lifecycle: Lifecycle, store: FakeLifecycles, ports: Ports
) -> None:
    for principal in (TENANT_ADMIN, USER):
        with pytest.raises(Forbidden):
            await lifecycle.transition_tenant(principal, "t1", "SUSPENDED")
    with pytest.raises(Forbidden):
        await lifecycle.tenant_history(USER, "t1")
    assert store.writes == [] and ports.log == []


async def test_a_refused_tenant_move_writes_nothing(
    lifecycle: Lifecycle, store: FakeLifecycles, ports: Ports
) -> None:
    with pytest.raises(Conflict):
        await lifecycle.move_tenant("t1", "ARCHIVED")
    with pytest.raises(NotFound):
        await lifecycle.move_tenant("t9", "ACTIVE")
    assert store.writes == [] and ports.log == []


async def test_an_entity_move_is_authorized_then_limited_then_admitted(
    lifecycle: Lifecycle, store: FakeLifecycles, ports: Ports
) -> None:
    store.machines["ticket2"] = MACHINE
    with pytest.raises(InvalidInput):  # a global key names the tenant
        await lifecycle.transition_entity(GLOBAL_ADMIN, "ticket2", "x1", "DONE")
    with pytest.raises(Forbidden):  # a bound key cannot name another tenant
        await lifecycle.transition_entity(TENANT_ADMIN, "ticket2", "x1", "DONE", tenant_id="t2")
    assert ports.log == [] and store.writes == []
    await lifecycle.transition_entity(TENANT_ADMIN, "ticket2", "x1", "DONE")
    assert [entry[0] for entry in ports.log] == ["take", "admit", "prepare", "committed"]
    assert ports.log[0] == ("take", "key_a", 1)
    assert store.writes == [("entity", ("ticket2", "t1", "x1"), "OPEN", "DONE", False)]


async def test_the_tenant_lifecycle_is_built_in(
    lifecycle: Lifecycle, store: FakeLifecycles
) -> None:
    with pytest.raises(Forbidden):
        await lifecycle.put_machine(TENANT_ADMIN, "ticket2", MACHINE)
    with pytest.raises(InvalidInput):
        await lifecycle.put_machine(OPERATOR, "tenant", MACHINE)
    machine = await lifecycle.put_machine(OPERATOR, "ticket2", MACHINE)
    assert machine.states == {"OPEN", "DONE"}
    assert store.writes == [("machine", "ticket2")]
    assert (await lifecycle.machine_for("ticket")).entity_type == "ticket"  # built in
    with pytest.raises(NotFound):
        await lifecycle.machine_for("nothing")


def event(event_id: str, audiences: tuple[str, ...]) -> Event:
    return Event(
        id=event_id,
        type="ticket.done",
        tenant_id="t1",
        entity_type="ticket2",
        entity_id="x1",
        action="done",
        timestamp="2026-01-01T00:00:00Z",
        actor=None,
        metadata={},
        data={},
        audiences=audiences,
        schema="1",
    )


async def test_a_user_reads_only_the_rows_whose_event_it_may_see(
    lifecycle: Lifecycle, store: FakeLifecycles
) -> None:
    store.rows = [
        {"id": 1, "event_id": None},
        {"id": 2, "event_id": "evt_seen"},
        {"id": 3, "event_id": "evt_hidden"},
    ]
    store.events = [
        event("evt_seen", ("user:ann",)),
        event("evt_hidden", ("user:bob",)),
    ]
    assert [r["id"] for r in await lifecycle.timeline(USER, "ticket2", "x1", None)] == [2]
    rows = await lifecycle.timeline(TENANT_ADMIN, "ticket2", "x1", None)
    assert [r["id"] for r in rows] == [1, 2, 3]
    with pytest.raises(Forbidden):  # the tenant lifecycle is for admin credentials
        await lifecycle.timeline(USER, "tenant", "t1", None)
