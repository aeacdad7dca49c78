"""The admin API: tenants, users, role defaults and API keys (DESIGN §4).

Every change to who may see what takes effect on open streams at once:
updating a user or a role re-derives the audiences of their live streams;
deleting a user closes them (and later reconnects answer 204). Revoking an
API key makes it 401 on every process before the call returns here and
within one control message elsewhere.

Who may call what is decided in :mod:`tidings.services.access` (the one table).
A platform user's reach is explicit: ``platformTenants`` is required when
``platform`` is true (``["*"]`` for every tenant), and only global
credentials create, change or delete platform users.
"""

from __future__ import annotations

import math
import time
from typing import Any, Literal

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from tidings.core.audience import ALL_TENANTS, UserRecord, parse_audience
from tidings.core.envelope import iso_utc, parse_instant
from tidings.core.ids import new_event_id
from tidings.errors import Forbidden, InvalidInput, NotFound
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
from tidings.services.access import authorize, in_scope
from tidings.services.auth import Principal, hash_secret, new_api_key
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
    platformTenants: list[str] | None = Field(default=None, max_length=1000)


class RoleIn(Strict):
    permissions: list[str] = Field(max_length=1000)
    tenantId: str | None = Field(default=None, pattern=ID)


MAX_KEY_LIFETIME_S = 10 * 365 * 86400.0


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


def _permission(value: str, field: str) -> str:
    parse_audience(f"permission:{value}", field=field)
    return value


@router.put(
    "/tenants/{tenant_id}",
    summary="Create or update a tenant",
    responses=answers(Tenant),
    openapi_extra=needs("tenants.write"),
)
async def put_tenant(
    request: Request, body: TenantIn, tenant_id: str = Path(pattern=ID)
) -> Response:
    tidings, _ = await admin(request, "tenants.write", tenant_id)
    existed = await tidings.store.get_tenant(tenant_id) is not None
    tenant = await tidings.store.put_tenant(tenant_id, body.name, body.settings)
    await tidings.control("tenant_changed", tenant=tenant_id)
    return json_response(_tenant_json(tenant), 200 if existed else 201)


@router.get(
    "/tenants",
    summary="List tenants",
    responses=answers(TenantList),
    openapi_extra=needs("tenants.list"),
)
async def list_tenants(request: Request) -> Response:
    tidings, principal = await admin(request, "tenants.list", scoped=False)
    tenants = await tidings.store.list_tenants()
    visible = [t for t in tenants if in_scope(principal, t.id)]
    return json_response({"items": [_tenant_json(t) for t in visible]})


@router.get(
    "/tenants/{tenant_id}",
    summary="One tenant",
    responses=answers(Tenant),
    openapi_extra=needs("tenants.read"),
)
async def get_tenant(request: Request, tenant_id: str = Path(pattern=ID)) -> Response:
    tidings, _ = await admin(request, "tenants.read", tenant_id)
    tenant = await tidings.store.get_tenant(tenant_id)
    if tenant is None:
        raise NotFound(f"unknown tenant {tenant_id!r}")
    return json_response(_tenant_json(tenant))


async def _existing_tenant(tidings: Tidings, tenant_id: str) -> None:
    if await tidings.store.get_tenant(tenant_id) is None:
        raise NotFound(f"unknown tenant {tenant_id!r}")


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
    tidings, principal = await admin(request, "users.write", tenant_id)
    await _existing_tenant(tidings, tenant_id)
    existing = await tidings.store.get_user(tenant_id, user_id)
    if body.platform or (existing is not None and existing.platform):
        authorize(principal, "users.platform", tenant_id, field="/platform")
    reach = await _platform_reach(tidings, body)
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
        platform_tenants=reach,
    )
    await tidings.store.put_user(user)
    await tidings.control("user_changed", tenant=tenant_id, user=user_id)
    return json_response(_user_json(user))


async def _platform_reach(tidings: Tidings, body: UserIn) -> tuple[str, ...]:
    """The tenants a platform user may see besides its own: always named
    (``["*"]`` for all, alone), each an existing tenant; () for others."""
    named = body.platformTenants
    if not body.platform:
        if named:
            raise InvalidInput(
                "platformTenants is only for platform users", field="/platformTenants"
            )
        return ()
    if not named:
        raise InvalidInput(
            'a platform user needs platformTenants: the tenants it may see, or ["*"] for all',
            field="/platformTenants",
        )
    if ALL_TENANTS in named:
        if len(named) > 1:
            raise InvalidInput('"*" stands alone: it means every tenant', field="/platformTenants")
        return (ALL_TENANTS,)
    for i, tenant_id in enumerate(named):
        if await tidings.store.get_tenant(tenant_id) is None:
            raise InvalidInput(f"unknown tenant {tenant_id!r}", field=f"/platformTenants/{i}")
    return tuple(dict.fromkeys(named))


@router.get(
    "/tenants/{tenant_id}/users/{user_id}",
    summary="One user",
    responses=answers(User),
    openapi_extra=needs("users.read"),
)
async def get_user(
    request: Request, tenant_id: str = Path(pattern=ID), user_id: str = Path(pattern=USER_ID)
) -> Response:
    tidings, _ = await admin(request, "users.read", tenant_id)
    user = await tidings.store.get_user(tenant_id, user_id)
    if user is None:
        raise NotFound(f"unknown user {user_id!r}")
    return json_response(_user_json(user))


@router.get(
    "/tenants/{tenant_id}/users",
    summary="List a tenant's users",
    responses=answers(UserList),
    openapi_extra=needs("users.read"),
)
async def list_users(request: Request, tenant_id: str = Path(pattern=ID)) -> Response:
    tidings, _ = await admin(request, "users.read", tenant_id)
    return json_response(
        {"items": [_user_json(u) for u in await tidings.store.list_users(tenant_id)]}
    )


@router.delete(
    "/tenants/{tenant_id}/users/{user_id}",
    status_code=204,
    summary="Delete a user (closes their streams)",
    openapi_extra=needs("users.write"),
)
async def delete_user(
    request: Request, tenant_id: str = Path(pattern=ID), user_id: str = Path(pattern=USER_ID)
) -> Response:
    tidings, principal = await admin(request, "users.write", tenant_id)
    existing = await tidings.store.get_user(tenant_id, user_id)
    if existing is not None and existing.platform:
        authorize(principal, "users.platform", tenant_id)
    if not await tidings.store.delete_user(tenant_id, user_id):
        raise NotFound(f"unknown user {user_id!r}")
    await tidings.control("user_deleted", tenant=tenant_id, user=user_id)
    return Response(status_code=204)


@router.put(
    "/roles/{role}",
    summary="Set a role's default permissions (global, or per tenant)",
    responses=answers(Role),
    openapi_extra=needs("roles.write"),
)
async def put_role(request: Request, body: RoleIn, role: str = Path(pattern=NAME)) -> Response:
    tidings, _ = await admin(request, "roles.write", body.tenantId, field="/tenantId")
    permissions = [_permission(p, f"/permissions/{i}") for i, p in enumerate(body.permissions)]
    await tidings.store.put_role(role, permissions, body.tenantId)
    await tidings.control("roles_changed", tenant=body.tenantId, role=role)
    return json_response(
        {"role": role, "tenantId": body.tenantId, "permissions": sorted(set(permissions))}
    )


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


def _expiry(body: ApiKeyIn, now: float) -> float | None:
    if body.expiresAt is not None and body.expiresInS is not None:
        raise InvalidInput("give expiresAt or expiresInS, not both", field="/expiresInS")
    if body.expiresInS is not None:
        return now + body.expiresInS
    if body.expiresAt is None:
        return None
    at = parse_instant(body.expiresAt, "/expiresAt")
    if not math.isfinite(at) or not now < at <= now + MAX_KEY_LIFETIME_S:
        raise InvalidInput(
            "expiresAt must be in the future, at most ten years ahead", field="/expiresAt"
        )
    return at


def _may_set_rate(tidings: Tidings, principal: Principal, rate: float | None) -> None:
    """Tenant-bound credentials may lower the platform's publish rate for a
    key, never lift or raise it."""
    default = tidings.settings.publish_rate
    if rate is None or principal.tenant_id is None or default <= 0:
        return
    if rate == 0 or rate > default:
        raise Forbidden(
            f"a tenant-bound key may set publishRate from above 0 up to {default:g}",
            field="/publishRate",
        )


@router.post(
    "/api-keys",
    status_code=201,
    summary="Create an API key (shown once)",
    responses=answers(NewApiKey, 201),
    openapi_extra=needs("api_keys.write"),
)
async def create_api_key(request: Request, body: ApiKeyIn) -> Response:
    tidings, principal = await admin(request, "api_keys.write", body.tenantId, field="/tenantId")
    if body.tenantId is not None:
        await _existing_tenant(tidings, body.tenantId)
    _may_set_rate(tidings, principal, body.publishRate)
    now = time.time()
    key = new_api_key()
    record = ApiKeyRecord(
        id="key_" + new_event_id()[4:],
        key_hash=hash_secret(key),
        name=body.name,
        scopes=frozenset(body.scopes),
        tenant_id=body.tenantId,
        created_at=now,
        expires_at=_expiry(body, now),
        publish_rate=body.publishRate,
    )
    await tidings.store.create_api_key(record)
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
    tidings, principal = await admin(request, "api_keys.list", scoped=False)
    wanted = request.query_params.get("tenantId") or None
    if wanted is not None:
        authorize(principal, "api_keys.list", wanted, field="tenantId")
    revoked = request.query_params.get("revoked")
    if revoked not in (None, "true", "false"):
        raise InvalidInput("revoked must be true or false", field="revoked")
    records = await tidings.store.list_api_keys(principal.tenant_id or wanted)
    if revoked is not None:
        records = [r for r in records if (r.revoked_at is not None) == (revoked == "true")]
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
    tidings, principal = await admin(request, "api_keys.write", scoped=False)
    record = await tidings.store.get_api_key_by_id(key_id)
    if record is None or not in_scope(principal, record.tenant_id):
        raise NotFound(f"no API key {key_id!r}")  # not theirs: do not reveal it
    if record.revoked_at is None:
        await tidings.store.revoke_api_key(key_id, time.time())
    await tidings.control("api_key_revoked", tenant=record.tenant_id, key=key_id)
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
    tidings, principal = await admin(request, "tenants.transition", tenant_id)
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


@router.get(
    "/tenants/{tenant_id}/lifecycle",
    summary="A tenant's lifecycle log, oldest first",
    responses=answers(Lifecycle),
    openapi_extra=needs("tenants.lifecycle"),
)
async def tenant_lifecycle(request: Request, tenant_id: str = Path(pattern=ID)) -> Response:
    tidings, _ = await admin(request, "tenants.lifecycle", tenant_id)
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
