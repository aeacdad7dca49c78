"""Inbound webhooks: ``POST /api/inbound/{integration}`` (authenticated by
its signature, not a bearer credential) and the admin side."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from tidings.http.events import json_response, node, principal_of, read_raw
from tidings.http.models import answers, needs
from tidings.http.models.admin import InboundAnswer, InboundLog, Integration

router = APIRouter(tags=["inbound"])
NAME = r"^[A-Za-z0-9_.\-]{1,100}$"
MAX_BODY = 256 * 1024


class IntegrationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    secret: str = Field(min_length=8, max_length=500)
    scheme: Literal["standard-webhooks", "hmac-sha256"] = "standard-webhooks"
    mappings: dict[str, dict[str, Any]] = Field(default_factory=dict)


@router.put(
    "/api/admin/integrations/{name}",
    summary="Create or update an inbound integration",
    responses=answers(Integration),
    openapi_extra=needs("integrations"),
)
async def put_integration(
    request: Request, body: IntegrationIn, name: str = Path(pattern=NAME)
) -> Response:
    await node(request).inbound.configure(
        await principal_of(request),
        name,
        secret=body.secret,
        scheme=body.scheme,
        mappings=body.mappings,
    )
    return json_response({"name": name, "scheme": body.scheme, "mappings": body.mappings})


@router.get(
    "/api/admin/integrations/{name}/log",
    summary="The integration's inbound audit log",
    responses=answers(InboundLog),
    openapi_extra=needs("integrations"),
)
async def integration_log(request: Request, name: str = Path(pattern=NAME)) -> Response:
    rows = await node(request).inbound.history(await principal_of(request), name)
    items = [
        {
            "webhookId": r["webhook_id"],
            "accepted": bool(r["accepted"]),
            "outcome": r["outcome"],
            "type": r["external_type"],
            "tenantId": r["tenant_id"],
            "at": r["created_at"],
        }
        for r in rows
    ]
    return json_response({"items": items})


@router.post(
    "/api/inbound/{name}",
    summary="Receive a signed webhook from an external system",
    responses=answers(InboundAnswer),
)
async def receive(request: Request, name: str = Path(pattern=NAME)) -> Response:
    body = await read_raw(request, MAX_BODY)
    answer = await node(request).inbound.receive(name, body, dict(request.headers))
    return json_response(answer)
