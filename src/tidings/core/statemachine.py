"""Declarative state machines (pure): states, transitions, guards, terminal
states and the event each transition emits.

Used for tenants (seed 001's lifecycle) and by host applications for their
own entities (seed 004's tickets). Storage of the current state and of the
lifecycle log, and publishing the emitted event in the same transaction,
belong to the service layer; this module only decides.

Guarantees (pinned by ``tests/core/test_statemachine.py``):

* :meth:`StateMachine.decide` accepts exactly the declared transitions (plus
  ``from any`` ones), never leaves a terminal state, and refuses a move the
  actor's permissions do not allow;
* an accepted :class:`Transition` names exactly one event type (or none, when
  the machine declares no event for that target);
* :func:`replay` of a lifecycle log gives the state the log ends in, and
  refuses a log that contains a transition the machine does not allow.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from tidings.errors import Conflict, Forbidden, InvalidInput

TRIGGER_SOURCES = frozenset({"system", "user", "job", "edge", "integration"})


@dataclass(frozen=True, slots=True)
class Transition:
    """An accepted move, ready to be recorded and published."""

    entity_type: str
    from_state: str
    to_state: str
    event_type: str | None
    reason: str | None
    triggered_by: str | None
    trigger_source: str


@dataclass(frozen=True)
class StateMachine:
    entity_type: str
    states: frozenset[str]
    initial: str
    transitions: Mapping[str, frozenset[str]]
    terminal: frozenset[str] = frozenset()
    from_any: frozenset[str] = frozenset()  # targets reachable from every non-terminal state
    guards: Mapping[tuple[str, str], str] = field(
        default_factory=dict
    )  # (from|*, to) -> permission
    events: Mapping[str, str] = field(default_factory=dict)  # to-state -> event type
    # How the emitted event's data names things: previous<Key>/new<Key>, and
    # the entity id field (seed 002: previousStatus/newStatus, ticketId).
    state_key: str = "State"
    id_field: str = "entityId"

    def __post_init__(self) -> None:
        named = {self.initial, *self.terminal, *self.from_any, *self.transitions, *self.events}
        for targets in self.transitions.values():
            named |= targets
        unknown = named - self.states
        if unknown:
            raise ValueError(f"{self.entity_type}: unknown states {sorted(unknown)}")
        for state in self.terminal:
            if self.transitions.get(state):
                raise ValueError(f"{self.entity_type}: terminal state {state} has transitions")

    def allowed(self, state: str) -> list[str]:
        """The states reachable from ``state`` in one move, sorted."""
        if state in self.terminal:
            return []
        targets = set(self.transitions.get(state, frozenset())) | set(self.from_any)
        targets.discard(state)
        return sorted(targets)

    def decide(
        self,
        state: str,
        to: str,
        *,
        permissions: Iterable[str] | None = None,
        reason: str | None = None,
        triggered_by: str | None = None,
        trigger_source: str = "user",
    ) -> Transition:
        """Validate a move. ``permissions`` None means a trusted caller
        (system, operator): guards do not apply."""
        if to not in self.states:
            raise InvalidInput(f"unknown {self.entity_type} state {to!r}", field="/to")
        if trigger_source not in TRIGGER_SOURCES:
            raise InvalidInput(
                f"trigger_source must be one of {', '.join(sorted(TRIGGER_SOURCES))}",
                field="/triggerSource",
            )
        allowed = self.allowed(state)
        if to not in allowed:
            raise Conflict(
                f"{self.entity_type} cannot move from {state} to {to}",
                field="/to",
                state=state,
                allowed=allowed,
            )
        guard = self.guards.get((state, to)) or self.guards.get(("*", to))
        if guard is not None and permissions is not None and guard not in set(permissions):
            raise Forbidden(f"moving a {self.entity_type} to {to} needs permission {guard!r}")
        return Transition(
            entity_type=self.entity_type,
            from_state=state,
            to_state=to,
            event_type=self.events.get(to),
            reason=reason,
            triggered_by=triggered_by,
            trigger_source=trigger_source,
        )


def machine_from_spec(entity_type: str, spec: Mapping[str, object]) -> StateMachine:
    """A machine declared as JSON by a host application::

    {"states": [...], "initial": "A", "transitions": {"A": ["B"]},
     "terminal": [], "fromAny": [], "guards": {"A->B": "perm"},
     "events": {"B": "x.y"}, "stateKey": "Status", "idField": "doorId"}
    """

    def strings(key: str) -> list[str]:
        value = spec.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise InvalidInput(f"{key} must be a list of strings", field=f"/{key}")
        return value

    def mapping(key: str) -> dict[str, object]:
        value = spec.get(key, {})
        if not isinstance(value, dict):
            raise InvalidInput(f"{key} must be an object", field=f"/{key}")
        return value

    transitions: dict[str, frozenset[str]] = {}
    for source, targets in mapping("transitions").items():
        if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
            raise InvalidInput(
                "transitions map a state to a list of states", field=f"/transitions/{source}"
            )
        transitions[source] = frozenset(targets)
    guards: dict[tuple[str, str], str] = {}
    for pair, permission in mapping("guards").items():
        source, sep, target = pair.partition("->")
        if not sep or not isinstance(permission, str):
            raise InvalidInput('guards are {"FROM->TO": "permission"}', field=f"/guards/{pair}")
        guards[(source.strip(), target.strip())] = permission
    events = {str(k): str(v) for k, v in mapping("events").items()}
    initial = spec.get("initial")
    if not isinstance(initial, str):
        raise InvalidInput("initial must name a state", field="/initial")
    try:
        return StateMachine(
            entity_type=entity_type,
            states=frozenset(strings("states")),
            initial=initial,
            transitions=transitions,
            terminal=frozenset(strings("terminal")),
            from_any=frozenset(strings("fromAny")),
            guards=guards,
            events=events,
            state_key=str(spec.get("stateKey", "State")),
            id_field=str(spec.get("idField", "entityId")),
        )
    except ValueError as exc:
        raise InvalidInput(str(exc), field="/states") from None


def replay(machine: StateMachine, log: Iterable[tuple[str, str]]) -> str:
    """The state a lifecycle log of ``(from, to)`` rows ends in."""
    state = machine.initial
    for from_state, to_state in log:
        if from_state != state:
            raise InvalidInput(f"log row from {from_state} does not follow state {state}")
        machine.decide(state, to_state)
        state = to_state
    return state


TENANT_LIFECYCLE = StateMachine(
    # Seed 001: CREATED -> PROVISIONING -> ACTIVE -> SUSPENDED | READ_ONLY ->
    # DEPROVISIONING -> ARCHIVED (terminal); BILLING_REACTIVATE brings a
    # suspended tenant back to ACTIVE.
    entity_type="tenant",
    states=frozenset(
        {
            "CREATED",
            "PROVISIONING",
            "ACTIVE",
            "SUSPENDED",
            "READ_ONLY",
            "DEPROVISIONING",
            "ARCHIVED",
        }
    ),
    initial="CREATED",
    transitions={
        "CREATED": frozenset({"PROVISIONING", "ACTIVE"}),
        "PROVISIONING": frozenset({"ACTIVE"}),
        "ACTIVE": frozenset({"SUSPENDED", "READ_ONLY", "DEPROVISIONING"}),
        "SUSPENDED": frozenset({"ACTIVE", "READ_ONLY", "DEPROVISIONING"}),
        "READ_ONLY": frozenset({"ACTIVE", "SUSPENDED", "DEPROVISIONING"}),
        "DEPROVISIONING": frozenset({"ARCHIVED"}),
    },
    terminal=frozenset({"ARCHIVED"}),
    events={
        "PROVISIONING": "ON_TENANT_PROVISIONING",
        "DEPROVISIONING": "ON_TENANT_DEPROVISIONING",
        "ACTIVE": "ON_TENANT_ACTIVATED",
        "SUSPENDED": "ON_TENANT_SUSPENDED",
        "READ_ONLY": "ON_TENANT_READ_ONLY",
        "ARCHIVED": "ON_TENANT_ARCHIVED",
    },
)

TICKET_LIFECYCLE = StateMachine(
    # Seed 004: OPEN -> TRIAGED -> QUOTED -> APPROVED -> IN_PROGRESS ->
    # COMPLETED -> AUDITED; any state -> CANCELLED.
    entity_type="ticket",
    state_key="Status",
    id_field="ticketId",
    states=frozenset(
        {
            "OPEN",
            "TRIAGED",
            "QUOTED",
            "APPROVED",
            "IN_PROGRESS",
            "COMPLETED",
            "AUDITED",
            "CANCELLED",
        }
    ),
    initial="OPEN",
    transitions={
        "OPEN": frozenset({"TRIAGED"}),
        "TRIAGED": frozenset({"QUOTED"}),
        "QUOTED": frozenset({"APPROVED"}),
        "APPROVED": frozenset({"IN_PROGRESS"}),
        "IN_PROGRESS": frozenset({"COMPLETED"}),
        "COMPLETED": frozenset({"AUDITED"}),
    },
    terminal=frozenset({"AUDITED", "CANCELLED"}),
    from_any=frozenset({"CANCELLED"}),
    guards={
        ("OPEN", "TRIAGED"): "tickets.triage",
        ("TRIAGED", "QUOTED"): "tickets.quote",
        ("QUOTED", "APPROVED"): "tickets.approve",
        ("COMPLETED", "AUDITED"): "tickets.audit",
    },
    events={
        "TRIAGED": "ticket.status_changed",
        "QUOTED": "ticket.quote_submitted",
        "APPROVED": "ticket.approved",
        "IN_PROGRESS": "ticket.status_changed",
        "COMPLETED": "ticket.completed",
        "AUDITED": "ticket.status_changed",
        "CANCELLED": "ticket.status_changed",
    },
)
