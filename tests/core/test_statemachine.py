"""State machines (pure): only declared moves, terminal states stay put,
guards apply, one event per accepted move, and a log replays to its state."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tidings.catalog import load_catalog
from tidings.core.statemachine import TENANT_LIFECYCLE, TICKET_LIFECYCLE, StateMachine, replay
from tidings.errors import Conflict, Forbidden, InvalidInput

MACHINES = [TENANT_LIFECYCLE, TICKET_LIFECYCLE]


@pytest.mark.parametrize("machine", MACHINES, ids=lambda m: m.entity_type)
def test_every_emitted_event_is_in_the_shipped_catalog(machine: StateMachine) -> None:
    catalog = load_catalog()
    for event_type in machine.events.values():
        assert event_type in catalog, event_type


def test_the_tenant_lifecycle_of_seed_001() -> None:
    m = TENANT_LIFECYCLE
    path = [
        "PROVISIONING",
        "ACTIVE",
        "SUSPENDED",
        "ACTIVE",
        "READ_ONLY",
        "DEPROVISIONING",
        "ARCHIVED",
    ]
    state = m.initial
    for to in path:
        state = m.decide(state, to, trigger_source="system").to_state
    assert state == "ARCHIVED" and m.allowed("ARCHIVED") == []
    with pytest.raises(Conflict) as info:
        m.decide("ARCHIVED", "ACTIVE")
    assert info.value.status == 409 and info.value.extra["allowed"] == []
    with pytest.raises(Conflict) as info:
        m.decide("CREATED", "SUSPENDED")
    assert info.value.extra["allowed"] == ["ACTIVE", "PROVISIONING"]
    assert m.decide("SUSPENDED", "ACTIVE").event_type == "ON_TENANT_ACTIVATED"


def test_ticket_guards_and_cancel_from_anywhere() -> None:
    m = TICKET_LIFECYCLE
    with pytest.raises(Forbidden):
        m.decide("QUOTED", "APPROVED", permissions={"tickets.read"})
    assert (
        m.decide("QUOTED", "APPROVED", permissions={"tickets.approve"}).event_type
        == "ticket.approved"
    )
    assert m.decide("IN_PROGRESS", "CANCELLED").to_state == "CANCELLED"
    assert m.allowed("CANCELLED") == []
    with pytest.raises(InvalidInput):
        m.decide("OPEN", "NOWHERE")
    with pytest.raises(InvalidInput):
        m.decide("OPEN", "TRIAGED", trigger_source="telepathy")


def test_a_machine_with_unknown_states_is_refused() -> None:
    with pytest.raises(ValueError):
        StateMachine("x", frozenset({"A"}), "A", {"A": frozenset({"B"})})


@settings(max_examples=300, deadline=None)
@given(data=st.data(), machine=st.sampled_from(MACHINES))
def test_random_sequences_stay_within_allowed_moves_and_replay(
    data: st.DataObject, machine: StateMachine
) -> None:
    state = machine.initial
    log: list[tuple[str, str]] = []
    events: list[str | None] = []
    for _ in range(data.draw(st.integers(0, 12))):
        to = data.draw(st.sampled_from(sorted(machine.states)))
        try:
            move = machine.decide(state, to)
        except Conflict:
            assert to not in machine.allowed(state)
            continue
        assert to in machine.allowed(state) and state not in machine.terminal
        log.append((move.from_state, move.to_state))
        events.append(move.event_type)
        state = to
    assert replay(machine, log) == state
    assert len(events) == len(log)  # exactly one decision (and event slot) per accepted move
    assert all(e == machine.events.get(to) for e, (_f, to) in zip(events, log, strict=True))


def test_a_log_with_a_forbidden_move_does_not_replay() -> None:
    with pytest.raises(Conflict):
        replay(TENANT_LIFECYCLE, [("CREATED", "ARCHIVED")])
    with pytest.raises(InvalidInput):
        replay(TENANT_LIFECYCLE, [("ACTIVE", "SUSPENDED")])
