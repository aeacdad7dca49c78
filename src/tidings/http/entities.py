"""State machines for any entity type (DESIGN §1): hosts declare machines,
move entities through them, and read an entity's timeline (seed 004's
``/timeline`` shape).

A timeline says no more than the events it records: a user reads only the
rows whose event they may see (:func:`tidings.core.audience.can_see`);
rows that emitted no event, and the whole tenant lifecycle (reasons, key
ids), are for admin credentials of the tenant (:mod:`tidings.services.access`).
"""

from __future__ import annotations

from typing import Any, Literal

import orjson
from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from tidings.core.audience import can_see
from tidings.core.statemachine import machine_from_spec
from tidings.errors import InvalidInput
from tidings.http.admin import ID, admin
from tidings.http.events import json_response, node, principal_of
from tidings.http.models import answers, needs
from tidings.http.models.admin import EntityMove, Machine, Timeline
from tidings.services.access import authorize
from tidings.services.auth import Principal

router = APIRouter(tags=["state machines"])
TYPE = ID  # entity types are spelled like tenant ids
ENTITY = r"^[A-Za-z0-9_.\-:@]{1,256}$"


class TransitionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to: str = Field(min_length=1, max_length=64)
    reason: str | None = Field(default=None, max_length=2000)
    tenantId: str | None = Field(default=None, pattern=ID)
    data: dict[str, Any] = Field(default_factory=dict)
    triggerSource: Literal["system", "user", "job", "edge", "integration"] | None = None


@router.put(
    "/api/admin/state-machines/{entity_type}",
    summary="Declare a state machine",
    responses=answers(Machine),
    openapi_extra=needs("state_machines.write"),
)
async def put_machine(
    request: Request, spec: dict[str, Any], entity_type: str = Path(pattern=TYPE)
) -> Response:
    tidings, _ = await admin(request, "state_machines.write")
    if entity_type == "tenant":
        raise InvalidInput("the tenant lifecycle is built in", field="entityType")
    machine = machine_from_spec(entity_type, spec)
    await tidings.store.put_state_machine(entity_type, spec)
    return json_response({"entityType": entity_type, "states": sorted(machine.states)})


def _tenant_of(principal: Principal, operation: str, tenant_id: str | None, field: str) -> str:
    """The tenant a call acts on (the caller's own, or the one it names),
    once ``operation`` is allowed there."""
    authorize(principal, operation, scoped=False)
    tenant = principal.tenant_id or tenant_id
    if tenant is None:
        raise InvalidInput("tenantId is required for keys not bound to a tenant", field=field)
    authorize(principal, operation, tenant_id or tenant, field=field)
    return tenant


@router.post(
    "/api/entities/{entity_type}/{entity_id}/transition",
    summary="Move an entity to a state",
    responses=answers(EntityMove),
    openapi_extra=needs("entities.transition"),
)
async def transition(
    request: Request,
    body: TransitionIn,
    entity_type: str = Path(pattern=TYPE),
    entity_id: str = Path(pattern=ENTITY),
) -> Response:
    tidings = node(request)
    principal = await principal_of(request)
    tenant_id = _tenant_of(principal, "entities.transition", body.tenantId, "/tenantId")
    tidings.limiter.take(principal, 1)  # it appends an event, like a publish
    user = principal.user
    move, event = await tidings.transition_entity(
        entity_type,
        tenant_id,
        entity_id,
        body.to,
        permissions=principal.viewer.permissions if principal.viewer is not None else None,
        reason=body.reason,
        triggered_by=user.user_id if user is not None else principal.key_id or principal.kind,
        trigger_source=body.triggerSource or ("user" if user is not None else "system"),
        data=body.data,
    )
    return json_response(
        {
            "entityType": entity_type,
            "entityId": entity_id,
            "from": move.from_state,
            "to": move.to_state,
            "event": None if event is None else {"id": event.id, "position": event.position},
        }
    )


@router.get(
    "/api/entities/{entity_type}/{entity_id}/timeline",
    summary="An entity's timeline",
    responses=answers(Timeline),
    openapi_extra=needs("entities.timeline", "tenants.lifecycle"),
)
async def timeline(
    request: Request,
    entity_type: str = Path(pattern=TYPE),
    entity_id: str = Path(pattern=ENTITY),
    tenantId: str | None = Query(default=None, max_length=64),
) -> Response:
    tidings = node(request)
    principal = await principal_of(request)
    operation = "tenants.lifecycle" if entity_type == "tenant" else "entities.timeline"
    tenant_id = _tenant_of(principal, operation, tenantId, "tenantId")
    rows = await tidings.store.lifecycle(entity_type, tenant_id, entity_id)
    if principal.viewer is not None:  # a user: the rows whose event it may see
        viewer = principal.viewer
        ids = [r["event_id"] for r in rows if r["event_id"]]
        seen = {
            e.id
            for e in await tidings.store.events_by_id(tenant_id, ids)
            if can_see(viewer, e.tenant_id, e.audiences)
        }
        rows = [r for r in rows if r["event_id"] in seen]
    items = [
        {
            "id": f"tl_{r['id']}",
            "entityId": entity_id,
            f"{entity_type}Id": entity_id,
            "eventType": "created" if r["from_state"] is None else "status_changed",
            "actorId": r["triggered_by"],
            "details": orjson.dumps(
                {"from": r["from_state"], "to": r["to_state"], "reason": r["reason"]}
            ).decode(),
            "triggerSource": r["trigger_source"],
            "eventId": r["event_id"],
            "createdAt": r["created_at"],
        }
        for r in rows
    ]
    return json_response(items)
