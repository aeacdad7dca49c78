"""Lifecycles: a tenant's (seed 001) and those of host entities driven by
state machines (DESIGN §1), with their history.

A move is validated by its machine, then its lifecycle row and its event
(if the move emits one) are written in one transaction: both or neither.
A tenant move is exempt from the tenant's own lifecycle gate (it *is* the
lifecycle) and is applied on every process (``tenant_changed`` with the
new state: streams of a closed tenant end with ``TENANT_SUSPENDED``); an
entity move is admitted like any other write of the tenant (409 when the
tenant accepts no writes) and limited like a publish.

A timeline says no more than the events it records: a user reads only the
rows whose event it may see (:func:`tidings.core.audience.can_see`); rows
that emitted no event, and the whole tenant lifecycle (reasons, key ids),
are for admin credentials of the tenant (:mod:`tidings.services.access`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from tidings.core.audience import can_see
from tidings.core.envelope import now_iso
from tidings.core.statemachine import (
    TENANT_LIFECYCLE,
    TICKET_LIFECYCLE,
    StateMachine,
    Transition,
    machine_from_spec,
)
from tidings.errors import InvalidInput, NotFound
from tidings.services.access import authorize, may
from tidings.services.auth import OPERATOR, Principal
from tidings.services.identity import Control
from tidings.store.base import AppendOutcome, AppendResult, LifecycleChange, NewEvent
from tidings.store.ports import Directory, EventLog, Lifecycles

BUILT_IN_MACHINES = {"ticket": TICKET_LIFECYCLE}
Move = tuple[Transition, AppendResult | None]  # the accepted move and its event, if any


class LifecycleStore(Directory, EventLog, Lifecycles, Protocol):
    """The store roles the lifecycle use cases use."""


class Lifecycle:
    """Tenant and entity transitions, state machines and timelines.

    Uses the store's ``Lifecycles`` role (transitions, lifecycle rows,
    machines), ``Directory`` (the tenant's current state) and ``EventLog``
    (the events a timeline row points at), plus ports: ``prepare`` (an
    envelope to a validated event: :meth:`tidings.services.ingest.Ingest.prepare`),
    ``committed`` (events appended outside group commit: to the feed, jobs to
    the worker), ``admit`` (the tenant's lifecycle gate), ``take`` (the
    publish rate limit) and ``control``.
    """

    def __init__(
        self,
        store: LifecycleStore,
        *,
        prepare: Callable[[Mapping[str, Any], Principal], NewEvent],
        committed: Callable[[AppendOutcome], None],
        admit: Callable[[str], Awaitable[object]],
        take: Callable[[Principal, int], None],
        control: Control,
    ) -> None:
        self._store = store
        self._prepare = prepare
        self._committed = committed
        self._admit = admit
        self._take = take
        self._control = control

    # -- tenants ----------------------------------------------------------

    async def transition_tenant(
        self,
        principal: Principal,
        tenant_id: str,
        to: str,
        *,
        reason: str | None = None,
        trigger_source: str = "user",
    ) -> Move:
        """A platform credential moves a tenant (recorded as triggered by
        its key id, or its kind)."""
        authorize(principal, "tenants.transition", tenant_id)
        return await self.move_tenant(
            tenant_id,
            to,
            reason=reason,
            triggered_by=principal.key_id or principal.kind,
            trigger_source=trigger_source,
        )

    async def move_tenant(
        self,
        tenant_id: str,
        to: str,
        *,
        reason: str | None = None,
        triggered_by: str | None = None,
        trigger_source: str = "user",
    ) -> Move:
        """Move a tenant for a trusted caller (the node, inbound mappings):
        validate, record the lifecycle row and publish the ``ON_TENANT_*``
        event in one transaction, then apply the state's effects on every
        process before returning."""
        tenant = await self._store.get_tenant(tenant_id)
        if tenant is None:
            raise NotFound(f"unknown tenant {tenant_id!r}")
        move = TENANT_LIFECYCLE.decide(
            tenant.state,
            to,
            reason=reason,
            triggered_by=triggered_by,
            trigger_source=trigger_source,
        )
        event = None
        if move.event_type is not None:
            data: dict[str, Any] = {
                "tenantId": tenant_id,
                "previousState": move.from_state,
                "newState": move.to_state,
                "triggerSource": trigger_source,
                "changedAt": now_iso(),
            }
            if reason:
                data["reason"] = reason
            if triggered_by:
                data["triggeredBy"] = triggered_by
            envelope = {
                "type": move.event_type,
                "tenantId": tenant_id,
                "entityId": tenant_id,
                "data": data,
            }
            event = self._prepare(envelope, OPERATOR)
        change = LifecycleChange(to, reason, triggered_by, trigger_source)
        outcome = await self._store.transition_tenant(tenant_id, tenant.state, change, event)
        self._committed(outcome)
        await self._control("tenant_changed", tenant=tenant_id, state=to)
        return move, (outcome.results[0] if outcome.results else None)

    async def tenant_moves(self, principal: Principal, tenant_id: str) -> list[str]:
        """The states the caller may move the tenant to now, sorted: the
        machine's targets from its current state, none for a credential
        that may not move tenants (:class:`NotFound` for an unknown one)."""
        authorize(principal, "tenants.read", tenant_id)
        tenant = await self._store.get_tenant(tenant_id)
        if tenant is None:
            raise NotFound(f"unknown tenant {tenant_id!r}")
        if not may(principal, "tenants.transition", tenant_id):
            return []
        return TENANT_LIFECYCLE.allowed(tenant.state)

    async def tenant_history(self, principal: Principal, tenant_id: str) -> list[dict[str, Any]]:
        """A tenant's lifecycle rows, oldest first (:class:`NotFound` for an
        unknown tenant)."""
        authorize(principal, "tenants.lifecycle", tenant_id)
        if await self._store.get_tenant(tenant_id) is None:
            raise NotFound(f"unknown tenant {tenant_id!r}")
        return await self._store.lifecycle("tenant", tenant_id, tenant_id)

    # -- host entities ----------------------------------------------------

    async def put_machine(
        self, principal: Principal, entity_type: str, spec: dict[str, Any]
    ) -> StateMachine:
        """Declare (or replace) the machine of ``entity_type``, once it is
        a valid one; the tenant lifecycle is built in."""
        authorize(principal, "state_machines.write")
        if entity_type == "tenant":
            raise InvalidInput("the tenant lifecycle is built in", field="entityType")
        machine = machine_from_spec(entity_type, spec)
        await self._store.put_state_machine(entity_type, spec)
        return machine

    async def machine_for(self, entity_type: str) -> StateMachine:
        """A host-declared machine, else a built-in one (seed 004's tickets)."""
        spec = await self._store.get_state_machine(entity_type)
        if spec is not None:
            return machine_from_spec(entity_type, spec)
        if entity_type in BUILT_IN_MACHINES:
            return BUILT_IN_MACHINES[entity_type]
        raise NotFound(f"no state machine for entity type {entity_type!r}")

    async def transition_entity(
        self,
        principal: Principal,
        entity_type: str,
        entity_id: str,
        to: str,
        *,
        tenant_id: str | None = None,
        reason: str | None = None,
        trigger_source: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> Move:
        """A caller moves an entity of its tenant (or of ``tenant_id``, in
        its scope): a user's permissions are the machine's guards, a key's
        are not checked (a trusted service); it counts as one publish."""
        tenant = _tenant_of(principal, "entities.transition", tenant_id, "/tenantId")
        self._take(principal, 1)  # it appends an event, like a publish
        user = principal.user
        return await self.move_entity(
            entity_type,
            tenant,
            entity_id,
            to,
            permissions=principal.viewer.permissions if principal.viewer is not None else None,
            reason=reason,
            triggered_by=user.user_id if user is not None else principal.key_id or principal.kind,
            trigger_source=trigger_source or ("user" if user is not None else "system"),
            data=data,
        )

    async def move_entity(
        self,
        entity_type: str,
        tenant_id: str,
        entity_id: str,
        to: str,
        *,
        permissions: frozenset[str] | None,
        reason: str | None = None,
        triggered_by: str | None = None,
        trigger_source: str = "user",
        data: dict[str, Any] | None = None,
    ) -> Move:
        """Move a machine-driven entity: guards checked against
        ``permissions`` (None: a trusted caller), lifecycle row and event in
        one transaction (409 with the allowed next states when invalid, or
        when the tenant accepts no writes)."""
        await self._admit(tenant_id)
        machine = await self.machine_for(entity_type)
        stored = await self._store.entity_state(entity_type, tenant_id, entity_id)
        current = stored or machine.initial
        move = machine.decide(
            current,
            to,
            permissions=permissions,
            reason=reason,
            triggered_by=triggered_by,
            trigger_source=trigger_source,
        )
        event = None
        if move.event_type is not None:
            payload: dict[str, Any] = {**(data or {}), machine.id_field: entity_id}
            payload[f"previous{machine.state_key}"] = current
            payload[f"new{machine.state_key}"] = to
            payload.setdefault("changedAt", now_iso())
            if reason:
                payload.setdefault("reason", reason)
            envelope = {"type": move.event_type, "tenantId": tenant_id, "entityId": entity_id}
            event = self._prepare(
                {**envelope, "entityType": entity_type, "data": payload}, OPERATOR
            )
        change = LifecycleChange(to, reason, triggered_by, trigger_source)
        outcome = await self._store.transition_entity(
            (entity_type, tenant_id, entity_id), current, change, event, exists=stored is not None
        )
        self._committed(outcome)
        return move, (outcome.results[0] if outcome.results else None)

    async def timeline(
        self, principal: Principal, entity_type: str, entity_id: str, tenant_id: str | None
    ) -> list[dict[str, Any]]:
        """An entity's lifecycle rows, oldest first, as far as the caller
        may see them: a user only the rows whose event it may see."""
        operation = "tenants.lifecycle" if entity_type == "tenant" else "entities.timeline"
        tenant = _tenant_of(principal, operation, tenant_id, "tenantId")
        rows = await self._store.lifecycle(entity_type, tenant, entity_id)
        viewer = principal.viewer
        if viewer is None:  # an admin credential of the tenant: every row
            return rows
        ids = [r["event_id"] for r in rows if r["event_id"]]
        seen = {
            e.id
            for e in await self._store.events_by_id(tenant, ids)
            if can_see(viewer, e.tenant_id, e.audiences)
        }
        return [r for r in rows if r["event_id"] in seen]


def _tenant_of(principal: Principal, operation: str, tenant_id: str | None, field: str) -> str:
    """The tenant a call acts on (the caller's own, or the one it names),
    once ``operation`` is allowed there."""
    authorize(principal, operation, scoped=False)
    tenant = principal.tenant_id or tenant_id
    if tenant is None:
        raise InvalidInput("tenantId is required for keys not bound to a tenant", field=field)
    authorize(principal, operation, tenant_id or tenant, field=field)
    return tenant
