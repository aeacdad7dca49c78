"""The admin API: tenants, users, role defaults and API keys (DESIGN §4).

Every change to who may see what takes effect on open streams at once:
updating a user or a role re-derives the audiences of their live streams;
deleting a user closes them (and later reconnects answer 204).
"""

from __future__ import annotations

import time
from typing import Any, Literal

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from tidings.auth import Principal, hash_secret, new_api_key
from tidings.core.audience import ALL_TENANTS, UserRecord, parse_audience
from tidings.core.ids import new_event_id
from tidings.errors import InvalidInput, NotFound
from tidings.http.events import json_response, node, principal_of
from tidings.service import Tidings
from tidings.store.base import ApiKeyRecord, TenantRecord

router = APIRouter(prefix="/api/admin", tags=["admin"])
ID = r"^[A-Za-z0-9_.\-]{1,64}$"
USER_ID = r"^[A-Za-z0-9_.\-@:]{1,200}$"
NAME = r"^[A-Za-z0-9_.\-:]{1,100}$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TenantIn(Strict):
    name: str = Field(min_length=1, max_length=200)
    settings: dict[str, Any] = Field(default_factory=dict)


class Overrides(Strict):
    grant: list[str] = Field(default_factory=list, max_length=500)
    revoke: list[str] = Field(default_factory=list, max_length=500)


class UserIn(Strict):
    systemRole: str = Field(pattern=NAME)
    permissionOverrides: Overrides = Field(default_factory=Overrides)
    resources: list[str] = Field(default_factory=list, max_length=1000)
    platform: bool = False
    platformTenants: list[str] | None = None


class RoleIn(Strict):
    permissions: list[str] = Field(max_length=1000)
    tenantId: str | None = Field(default=None, pattern=ID)


class ApiKeyIn(Strict):
    name: str = Field(default="api key", min_length=1, max_length=200)
    scopes: list[Literal["publish", "admin"]] = Field(min_length=1)
    tenantId: str | None = Field(default=None, pattern=ID)


async def admin(request: Request, tenant_id: str | None) -> tuple[Tidings, Principal]:
    """The caller, who must be an admin; tenant-bound keys only for their
    tenant (``tenant_id`` None: a global call, or a listing they filter)."""
    principal = await principal_of(request)
    principal.require_admin(tenant_id if tenant_id is not None else principal.tenant_id)
    return node(request), principal


def _tenant_json(tenant: TenantRecord) -> dict[str, Any]:
    return {
        "id": tenant.id,
        "name": tenant.name,
        "state": tenant.state,
        "settings": tenant.settings,
        "createdAt": tenant.created_at,
        "updatedAt": tenant.updated_at,
    }


def _user_json(user: UserRecord) -> dict[str, Any]:
    return {
        "tenantId": user.tenant_id,
        "userId": user.user_id,
        "systemRole": user.system_role,
        "permissionOverrides": {"grant": sorted(user.grants), "revoke": sorted(user.revokes)},
        "resources": sorted(user.resources),
        "platform": user.platform,
        "platformTenants": list(user.platform_tenants) if user.platform else [],
    }


def _permission(value: str, field: str) -> str:
    parse_audience(f"permission:{value}", field=field)
    return value


@router.put("/tenants/{tenant_id}", summary="Create or update a tenant")
async def put_tenant(
    request: Request, body: TenantIn, tenant_id: str = Path(pattern=ID)
) -> Response:
    tidings, _ = await admin(request, tenant_id)
    existed = await tidings.store.get_tenant(tenant_id) is not None
    tenant = await tidings.store.put_tenant(tenant_id, body.name, body.settings)
    await tidings.control("tenant_changed", tenant=tenant_id)
    return json_response(_tenant_json(tenant), 200 if existed else 201)


@router.get("/tenants", summary="List tenants")
async def list_tenants(request: Request) -> Response:
    tidings, principal = await admin(request, None)
    tenants = await tidings.store.list_tenants()
    visible = [t for t in tenants if principal.tenant_id in (None, t.id)]
    return json_response({"items": [_tenant_json(t) for t in visible]})


@router.get("/tenants/{tenant_id}", summary="One tenant")
async def get_tenant(request: Request, tenant_id: str = Path(pattern=ID)) -> Response:
    tidings, _ = await admin(request, tenant_id)
    tenant = await tidings.store.get_tenant(tenant_id)
    if tenant is None:
        raise NotFound(f"unknown tenant {tenant_id!r}")
    return json_response(_tenant_json(tenant))


async def _existing_tenant(tidings: Tidings, tenant_id: str) -> None:
    if await tidings.store.get_tenant(tenant_id) is None:
        raise NotFound(f"unknown tenant {tenant_id!r}")


@router.put("/tenants/{tenant_id}/users/{user_id}", summary="Create or update a user")
async def put_user(
    request: Request,
    body: UserIn,
    tenant_id: str = Path(pattern=ID),
    user_id: str = Path(pattern=USER_ID),
) -> Response:
    tidings, _ = await admin(request, tenant_id)
    await _existing_tenant(tidings, tenant_id)
    grants = [
        _permission(p, f"/permissionOverrides/grant/{i}")
        for i, p in enumerate(body.permissionOverrides.grant)
    ]
    revokes = [
        _permission(p, f"/permissionOverrides/revoke/{i}")
        for i, p in enumerate(body.permissionOverrides.revoke)
    ]
    resources = [
        parse_audience(f"resource:{r}", field=f"/resources/{i}")[9:]
        for i, r in enumerate(body.resources)
    ]
    user = UserRecord(
        tenant_id=tenant_id,
        user_id=user_id,
        system_role=body.systemRole,
        grants=frozenset(grants),
        revokes=frozenset(revokes),
        resources=frozenset(resources),
        platform=body.platform,
        platform_tenants=tuple(body.platformTenants or [ALL_TENANTS]) if body.platform else (),
    )
    await tidings.store.put_user(user)
    await tidings.control("user_changed", tenant=tenant_id, user=user_id)
    return json_response(_user_json(user))


@router.get("/tenants/{tenant_id}/users/{user_id}", summary="One user")
async def get_user(
    request: Request, tenant_id: str = Path(pattern=ID), user_id: str = Path(pattern=USER_ID)
) -> Response:
    tidings, _ = await admin(request, tenant_id)
    user = await tidings.store.get_user(tenant_id, user_id)
    if user is None:
        raise NotFound(f"unknown user {user_id!r}")
    return json_response(_user_json(user))


@router.get("/tenants/{tenant_id}/users", summary="List a tenant's users")
async def list_users(request: Request, tenant_id: str = Path(pattern=ID)) -> Response:
    tidings, _ = await admin(request, tenant_id)
    return json_response(
        {"items": [_user_json(u) for u in await tidings.store.list_users(tenant_id)]}
    )


@router.delete(
    "/tenants/{tenant_id}/users/{user_id}",
    status_code=204,
    summary="Delete a user (closes their streams)",
)
async def delete_user(
    request: Request, tenant_id: str = Path(pattern=ID), user_id: str = Path(pattern=USER_ID)
) -> Response:
    tidings, _ = await admin(request, tenant_id)
    if not await tidings.store.delete_user(tenant_id, user_id):
        raise NotFound(f"unknown user {user_id!r}")
    await tidings.control("user_deleted", tenant=tenant_id, user=user_id)
    return Response(status_code=204)


@router.put("/roles/{role}", summary="Set a role's default permissions (global, or per tenant)")
async def put_role(request: Request, body: RoleIn, role: str = Path(pattern=NAME)) -> Response:
    tidings, principal = await admin(request, body.tenantId)
    if principal.tenant_id is not None and body.tenantId is None:
        raise InvalidInput("a tenant-bound key can only set tenant overrides", field="/tenantId")
    permissions = [_permission(p, f"/permissions/{i}") for i, p in enumerate(body.permissions)]
    await tidings.store.put_role(role, permissions, body.tenantId)
    await tidings.control("roles_changed", tenant=body.tenantId, role=role)
    return json_response(
        {"role": role, "tenantId": body.tenantId, "permissions": sorted(set(permissions))}
    )


@router.post("/api-keys", status_code=201, summary="Create an API key (shown once)")
async def create_api_key(request: Request, body: ApiKeyIn) -> Response:
    tidings, principal = await admin(request, body.tenantId)
    if principal.tenant_id is not None and body.tenantId != principal.tenant_id:
        raise InvalidInput(
            "a tenant-bound key can only create keys for its tenant", field="/tenantId"
        )
    if body.tenantId is not None:
        await _existing_tenant(tidings, body.tenantId)
    key = new_api_key()
    record = ApiKeyRecord(
        id="key_" + new_event_id()[4:],
        key_hash=hash_secret(key),
        name=body.name,
        scopes=frozenset(body.scopes),
        tenant_id=body.tenantId,
        created_at=time.time(),
    )
    await tidings.store.create_api_key(record)
    return json_response(
        {
            "id": record.id,
            "key": key,
            "name": record.name,
            "scopes": sorted(record.scopes),
            "tenantId": record.tenant_id,
        },
        201,
    )


class TransitionIn(Strict):
    to: str = Field(min_length=1, max_length=64)
    reason: str | None = Field(default=None, max_length=2000)
    triggerSource: Literal["system", "user", "job", "edge", "integration"] = "user"


@router.post("/tenants/{tenant_id}/transition", summary="Move a tenant through its lifecycle")
async def transition_tenant(
    request: Request, body: TransitionIn, tenant_id: str = Path(pattern=ID)
) -> Response:
    tidings, principal = await admin(request, tenant_id)
    move, event = await tidings.transition_tenant(
        tenant_id,
        body.to,
        reason=body.reason,
        triggered_by=principal.key_id or principal.kind,
        trigger_source=body.triggerSource,
    )
    return json_response(
        {
            "tenantId": tenant_id,
            "from": move.from_state,
            "to": move.to_state,
            "event": None if event is None else {"id": event.id, "position": event.position},
        }
    )


@router.get("/tenants/{tenant_id}/lifecycle", summary="A tenant's lifecycle log, oldest first")
async def tenant_lifecycle(request: Request, tenant_id: str = Path(pattern=ID)) -> Response:
    tidings, _ = await admin(request, tenant_id)
    await _existing_tenant(tidings, tenant_id)
    rows = await tidings.store.lifecycle("tenant", tenant_id, tenant_id)
    items = [
        {
            "from": r["from_state"],
            "to": r["to_state"],
            "reason": r["reason"],
            "triggeredBy": r["triggered_by"],
            "triggerSource": r["trigger_source"],
            "eventId": r["event_id"],
            "at": r["created_at"],
        }
        for r in rows
    ]
    return json_response({"items": items})
