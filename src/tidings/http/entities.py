"""State machines for any entity type (DESIGN §1): hosts declare machines,
move entities through them, and read an entity's timeline (seed 004's
``/timeline`` shape).

The use cases, their authorization and what a timeline shows to whom
live in :mod:`tidings.services.lifecycle`; here: parsing and the JSON.
"""

from __future__ import annotations

from typing import Any, Literal

import orjson
from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from tidings.http.admin import ID
from tidings.http.events import json_response, node, principal_of
from tidings.http.models import answers, needs
from tidings.http.models.admin import EntityMove, Machine, Timeline

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
    principal = await principal_of(request)
    machine = await node(request).lifecycle.put_machine(principal, entity_type, spec)
    return json_response({"entityType": entity_type, "states": sorted(machine.states)})


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
    principal = await principal_of(request)
    move, event = await node(request).lifecycle.transition_entity(
        principal,
        entity_type,
        entity_id,
        body.to,
        tenant_id=body.tenantId,
        reason=body.reason,
        trigger_source=body.triggerSource,
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
    principal = await principal_of(request)
    rows = await node(request).lifecycle.timeline(principal, entity_type, entity_id, tenantId)
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
