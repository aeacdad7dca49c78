"""The admin API: tenants, users, role defaults, API keys and the tenant
lifecycle (DESIGN §4), over :mod:`tidings.services.identity` and
:mod:`tidings.services.lifecycle`, which authorize each call, write it and
send its control message (so a change takes effect on open streams before
the call returns). Here: parsing the bodies and shaping the JSON.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from tidings.core.audience import UserRecord
from tidings.core.envelope import iso_utc
from tidings.errors import InvalidInput
from tidings.http.events import json_response, node, principal_of
from tidings.http.models import answers, needs
from tidings.http.models.admin import (
    ApiKeyList,
    Lifecycle,
    NewApiKey,
    Role,
    Tenant,
    TenantList,
    TenantMove,
    User,
    UserList,
)
from tidings.node import Tidings
from tidings.services.access import authorize
from tidings.services.auth import Principal
from tidings.services.identity import MAX_KEY_LIFETIME_S, KeyRequest, UserChange
from tidings.store.base import ApiKeyRecord, TenantRecord  # record types, for annotations

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
    platformTenants: list[str] | None = Field(default=None, max_length=1000)


class RoleIn(Strict):
    permissions: list[str] = Field(max_length=1000)
    tenantId: str | None = Field(default=None, pattern=ID)


class ApiKeyIn(Strict):
    name: str = Field(default="api key", min_length=1, max_length=200)
    scopes: list[Literal["publish", "admin"]] = Field(min_length=1)
    tenantId: str | None = Field(default=None, pattern=ID)
    expiresAt: str | None = Field(default=None, min_length=1, max_length=64)
    expiresInS: float | None = Field(default=None, gt=0, le=MAX_KEY_LIFETIME_S, allow_inf_nan=False)
    # events per second (burst of the same size); 0: not limited; None: the default
    publishRate: float | None = Field(default=None, ge=0, le=1_000_000, allow_inf_nan=False)


async def admin(
    request: Request,
    operation: str,
    tenant_id: str | None = None,
    *,
    scoped: bool = True,
    field: str | None = None,
) -> tuple[Tidings, Principal]:
    """The caller, if :func:`tidings.services.access.authorize` lets it perform
    ``operation`` on ``tenant_id`` (None: a global target; ``scoped=False``
    for listings and lookups by id, which check the scope themselves)."""
    principal = await principal_of(request)
    authorize(principal, operation, tenant_id, scoped=scoped, field=field)
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


@router.put(
    "/tenants/{tenant_id}",
    summary="Create or update a tenant",
    responses=answers(Tenant),
    openapi_extra=needs("tenants.write"),
)
async def put_tenant(
    request: Request, body: TenantIn, tenant_id: str = Path(pattern=ID)
) -> Response:
    principal = await principal_of(request)
    tenant, created = await node(request).identity.put_tenant(
        principal, tenant_id, body.name, body.settings
    )
    return json_response(_tenant_json(tenant), 201 if created else 200)


@router.get(
    "/tenants",
    summary="List tenants",
    responses=answers(TenantList),
    openapi_extra=needs("tenants.list"),
)
async def list_tenants(request: Request) -> Response:
    principal = await principal_of(request)
    tenants = await node(request).identity.list_tenants(principal)
    return json_response({"items": [_tenant_json(t) for t in tenants]})


@router.get(
    "/tenants/{tenant_id}",
    summary="One tenant",
    responses=answers(Tenant),
    openapi_extra=needs("tenants.read"),
)
async def get_tenant(request: Request, tenant_id: str = Path(pattern=ID)) -> Response:
    principal = await principal_of(request)
    tenant = await node(request).identity.get_tenant(principal, tenant_id)
    return json_response(_tenant_json(tenant))


@router.put(
    "/tenants/{tenant_id}/users/{user_id}",
    summary="Create or update a user",
    responses=answers(User),
    openapi_extra=needs("users.write"),
)
async def put_user(
    request: Request,
    body: UserIn,
    tenant_id: str = Path(pattern=ID),
    user_id: str = Path(pattern=USER_ID),
) -> Response:
    principal = await principal_of(request)
    change = UserChange(
        system_role=body.systemRole,
        grants=body.permissionOverrides.grant,
        revokes=body.permissionOverrides.revoke,
        resources=body.resources,
        platform=body.platform,
        platform_tenants=body.platformTenants,
    )
    user = await node(request).identity.put_user(principal, tenant_id, user_id, change)
    return json_response(_user_json(user))


@router.get(
    "/tenants/{tenant_id}/users/{user_id}",
    summary="One user",
    responses=answers(User),
    openapi_extra=needs("users.read"),
)
async def get_user(
    request: Request, tenant_id: str = Path(pattern=ID), user_id: str = Path(pattern=USER_ID)
) -> Response:
    principal = await principal_of(request)
    user = await node(request).identity.get_user(principal, tenant_id, user_id)
    return json_response(_user_json(user))


@router.get(
    "/tenants/{tenant_id}/users",
    summary="List a tenant's users",
    responses=answers(UserList),
    openapi_extra=needs("users.read"),
)
async def list_users(request: Request, tenant_id: str = Path(pattern=ID)) -> Response:
    principal = await principal_of(request)
    users = await node(request).identity.list_users(principal, tenant_id)
    return json_response({"items": [_user_json(u) for u in users]})


@router.delete(
    "/tenants/{tenant_id}/users/{user_id}",
    status_code=204,
    summary="Delete a user (closes their streams)",
    openapi_extra=needs("users.write"),
)
async def delete_user(
    request: Request, tenant_id: str = Path(pattern=ID), user_id: str = Path(pattern=USER_ID)
) -> Response:
    principal = await principal_of(request)
    await node(request).identity.delete_user(principal, tenant_id, user_id)
    return Response(status_code=204)


@router.put(
    "/roles/{role}",
    summary="Set a role's default permissions (global, or per tenant)",
    responses=answers(Role),
    openapi_extra=needs("roles.write"),
)
async def put_role(request: Request, body: RoleIn, role: str = Path(pattern=NAME)) -> Response:
    principal = await principal_of(request)
    permissions = await node(request).identity.put_role(
        principal, role, body.permissions, body.tenantId
    )
    return json_response({"role": role, "tenantId": body.tenantId, "permissions": permissions})


def _key_json(record: ApiKeyRecord) -> dict[str, Any]:
    """A key as listed: never its secret nor the secret's hash."""

    def when(epoch: float | None) -> str | None:
        return None if epoch is None else iso_utc(epoch)

    return {
        "id": record.id,
        "name": record.name,
        "scopes": sorted(record.scopes),
        "tenantId": record.tenant_id,
        "createdAt": when(record.created_at),
        "lastUsedAt": when(record.last_used_at),
        "expiresAt": when(record.expires_at),
        "revokedAt": when(record.revoked_at),
        "publishRate": record.publish_rate,
    }


@router.post(
    "/api-keys",
    status_code=201,
    summary="Create an API key (shown once)",
    responses=answers(NewApiKey, 201),
    openapi_extra=needs("api_keys.write"),
)
async def create_api_key(request: Request, body: ApiKeyIn) -> Response:
    principal = await principal_of(request)
    wanted = KeyRequest(
        name=body.name,
        scopes=frozenset(body.scopes),
        tenant_id=body.tenantId,
        expires_at=body.expiresAt,
        expires_in_s=body.expiresInS,
        publish_rate=body.publishRate,
    )
    record, key = await node(request).identity.create_api_key(principal, wanted)
    return json_response({**_key_json(record), "key": key}, 201)


@router.get(
    "/api-keys",
    summary="List API keys (never their secrets)",
    responses=answers(ApiKeyList),
    openapi_extra=needs("api_keys.list"),
)
async def list_api_keys(request: Request) -> Response:
    """Every key in the caller's scope, newest first; ``?tenantId=`` narrows,
    ``?revoked=false`` (or ``true``) keeps the live (or revoked) keys only."""
    principal = await principal_of(request)
    wanted = request.query_params.get("tenantId") or None
    revoked = request.query_params.get("revoked")
    if revoked not in (None, "true", "false"):
        raise InvalidInput("revoked must be true or false", field="revoked")
    records = await node(request).identity.list_api_keys(
        principal, wanted, revoked=None if revoked is None else revoked == "true"
    )
    return json_response({"items": [_key_json(r) for r in records]})


@router.delete(
    "/api-keys/{key_id}",
    status_code=204,
    summary="Revoke an API key (at once)",
    openapi_extra=needs("api_keys.write"),
)
async def revoke_api_key(
    request: Request, key_id: str = Path(pattern=r"^key_[0-9A-Za-z]{1,40}$")
) -> Response:
    """The key answers 401 on this process before this returns, and on the
    others as soon as they get the control message. Revoking twice is fine."""
    principal = await principal_of(request)
    await node(request).identity.revoke_api_key(principal, key_id)
    return Response(status_code=204)


class TransitionIn(Strict):
    to: str = Field(min_length=1, max_length=64)
    reason: str | None = Field(default=None, max_length=2000)
    triggerSource: Literal["system", "user", "job", "edge", "integration"] = "user"


@router.post(
    "/tenants/{tenant_id}/transition",
    summary="Move a tenant through its lifecycle",
    responses=answers(TenantMove),
    openapi_extra=needs("tenants.transition"),
)
async def transition_tenant(
    request: Request, body: TransitionIn, tenant_id: str = Path(pattern=ID)
) -> Response:
    principal = await principal_of(request)
    move, event = await node(request).lifecycle.transition_tenant(
        principal, tenant_id, body.to, reason=body.reason, trigger_source=body.triggerSource
    )
    return json_response(
        {
            "tenantId": tenant_id,
            "from": move.from_state,
            "to": move.to_state,
            "event": None if event is None else {"id": event.id, "position": event.position},
        }
    )


@router.get(
    "/tenants/{tenant_id}/lifecycle",
    summary="A tenant's lifecycle log, oldest first",
    responses=answers(Lifecycle),
    openapi_extra=needs("tenants.lifecycle"),
)
async def tenant_lifecycle(request: Request, tenant_id: str = Path(pattern=ID)) -> Response:
    principal = await principal_of(request)
    rows = await node(request).lifecycle.tenant_history(principal, tenant_id)
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
