"""Who exists and what they may do: tenants, users, role defaults and API
keys (DESIGN §4), one use case per method.

Every method that changes who may see what ends by sending its control
message, so the change takes effect on open streams at once: updating a
user or a role re-derives the audiences of their live streams
(``user_changed``, ``roles_changed``), deleting a user closes them
(``user_deleted``: the stream closes with ``USER_DELETED``, later
reconnects answer 204), revoking an API key makes it 401 on this process
before the call returns and on the others within one control message
(``api_key_revoked``: its streams close with ``KEY_REVOKED``).

Authorization is asked first, before any read or write, of the one table
(:mod:`tidings.services.access`). A platform user's reach is explicit:
``platform_tenants`` is required when ``platform`` is true (``["*"]`` for
every tenant), and only global credentials create, change or delete
platform users.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tidings.core.audience import ALL_TENANTS, UserRecord, parse_audience
from tidings.core.envelope import parse_instant
from tidings.core.ids import new_event_id
from tidings.errors import Forbidden, InvalidInput, NotFound
from tidings.services.access import authorize, in_scope
from tidings.services.auth import Principal, hash_secret, new_api_key
from tidings.store.base import ApiKeyRecord, TenantRecord
from tidings.store.ports import Directory

Control = Callable[..., Awaitable[None]]
"""Sends a control message (``control(kind, **fields)``): applied on this
process before it returns, then told to the others
(:meth:`tidings.node.Tidings.control`)."""

MAX_KEY_LIFETIME_S = 10 * 365 * 86400.0


@dataclass(frozen=True, slots=True)
class UserChange:
    """A user as a caller writes it: permissions and resources unparsed
    (each is checked, with a JSON pointer to the bad one)."""

    system_role: str
    grants: Sequence[str] = ()
    revokes: Sequence[str] = ()
    resources: Sequence[str] = ()
    platform: bool = False
    platform_tenants: Sequence[str] | None = None  # required iff platform


@dataclass(frozen=True, slots=True)
class KeyRequest:
    """An API key to create. At most one of ``expires_at`` (an instant as
    sent) and ``expires_in_s``; ``publish_rate`` None: the platform's."""

    name: str
    scopes: frozenset[str]
    tenant_id: str | None = None
    expires_at: str | None = None
    expires_in_s: float | None = None
    publish_rate: float | None = None


class Identity:
    """Tenants, users, roles and API keys.

    Uses the store's ``Directory`` role (tenants, users, roles, API keys)
    and the ``control`` port; ``publish_rate`` is the platform's default
    publish rate, the ceiling a tenant-bound credential may give its keys.
    """

    def __init__(
        self,
        store: Directory,
        *,
        control: Control,
        publish_rate: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._control = control
        self._publish_rate = publish_rate
        self._clock = clock

    # -- tenants ----------------------------------------------------------

    async def put_tenant(
        self, principal: Principal, tenant_id: str, name: str, settings: dict[str, Any]
    ) -> tuple[TenantRecord, bool]:
        """Create or update a tenant; returns it and whether it is new."""
        authorize(principal, "tenants.write", tenant_id)
        existed = await self._store.get_tenant(tenant_id) is not None
        tenant = await self._store.put_tenant(tenant_id, name, settings)
        await self._control("tenant_changed", tenant=tenant_id)
        return tenant, not existed

    async def list_tenants(self, principal: Principal) -> list[TenantRecord]:
        """The tenants in the caller's scope."""
        authorize(principal, "tenants.list", scoped=False)
        return [t for t in await self._store.list_tenants() if in_scope(principal, t.id)]

    async def get_tenant(self, principal: Principal, tenant_id: str) -> TenantRecord:
        authorize(principal, "tenants.read", tenant_id)
        return await self.existing_tenant(tenant_id)

    async def existing_tenant(self, tenant_id: str) -> TenantRecord:
        """The tenant, or :class:`NotFound` (for use cases that name one)."""
        tenant = await self._store.get_tenant(tenant_id)
        if tenant is None:
            raise NotFound(f"unknown tenant {tenant_id!r}")
        return tenant

    # -- users and roles --------------------------------------------------

    async def put_user(
        self, principal: Principal, tenant_id: str, user_id: str, change: UserChange
    ) -> UserRecord:
        """Create or replace a user of an existing tenant; its open streams
        are re-derived before this returns (``user_changed``)."""
        authorize(principal, "users.write", tenant_id)
        await self.existing_tenant(tenant_id)
        existing = await self._store.get_user(tenant_id, user_id)
        if change.platform or (existing is not None and existing.platform):
            authorize(principal, "users.platform", tenant_id, field="/platform")
        reach = await self._platform_reach(change)
        user = UserRecord(
            tenant_id=tenant_id,
            user_id=user_id,
            system_role=change.system_role,
            grants=frozenset(_permissions(change.grants, "/permissionOverrides/grant")),
            revokes=frozenset(_permissions(change.revokes, "/permissionOverrides/revoke")),
            resources=frozenset(
                parse_audience(f"resource:{r}", field=f"/resources/{i}")[9:]
                for i, r in enumerate(change.resources)
            ),
            platform=change.platform,
            platform_tenants=reach,
        )
        await self._store.put_user(user)
        await self._control("user_changed", tenant=tenant_id, user=user_id)
        return user

    async def _platform_reach(self, change: UserChange) -> tuple[str, ...]:
        """The tenants a platform user may see besides its own: always named
        (``["*"]`` for all, alone), each an existing tenant; () for others."""
        named = change.platform_tenants
        if not change.platform:
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
                raise InvalidInput(
                    '"*" stands alone: it means every tenant', field="/platformTenants"
                )
            return (ALL_TENANTS,)
        for i, tenant_id in enumerate(named):
            if await self._store.get_tenant(tenant_id) is None:
                raise InvalidInput(f"unknown tenant {tenant_id!r}", field=f"/platformTenants/{i}")
        return tuple(dict.fromkeys(named))

    async def get_user(self, principal: Principal, tenant_id: str, user_id: str) -> UserRecord:
        authorize(principal, "users.read", tenant_id)
        user = await self._store.get_user(tenant_id, user_id)
        if user is None:
            raise NotFound(f"unknown user {user_id!r}")
        return user

    async def list_users(
        self, principal: Principal, tenant_id: str, *, limit: int | None = None
    ) -> list[UserRecord]:
        """The tenant's users by id; ``limit`` bounds the answer."""
        authorize(principal, "users.read", tenant_id)
        return await self._store.list_users(tenant_id, limit)

    async def delete_user(self, principal: Principal, tenant_id: str, user_id: str) -> None:
        """Delete a user; its open streams close (``user_deleted``) before
        this returns. :class:`NotFound` when there is no such user."""
        authorize(principal, "users.write", tenant_id)
        existing = await self._store.get_user(tenant_id, user_id)
        if existing is not None and existing.platform:
            authorize(principal, "users.platform", tenant_id)
        if not await self._store.delete_user(tenant_id, user_id):
            raise NotFound(f"unknown user {user_id!r}")
        await self._control("user_deleted", tenant=tenant_id, user=user_id)

    async def put_role(
        self, principal: Principal, role: str, permissions: Sequence[str], tenant_id: str | None
    ) -> list[str]:
        """Set a role's default permissions, globally (``tenant_id`` None:
        global credentials only) or for one tenant; returns them sorted."""
        authorize(principal, "roles.write", tenant_id, field="/tenantId")
        checked = _permissions(permissions, "/permissions")
        await self._store.put_role(role, checked, tenant_id)
        await self._control("roles_changed", tenant=tenant_id, role=role)
        return sorted(set(checked))

    async def role_defaults(self, principal: Principal, tenant_id: str) -> dict[str, list[str]]:
        """The role defaults a tenant's users derive their permissions from:
        the global ones, overridden role by role by the tenant's own; each
        role's permissions sorted."""
        authorize(principal, "users.read", tenant_id)
        await self.existing_tenant(tenant_id)
        merged = await self._store.role_defaults(tenant_id)
        return {role: sorted(merged[role]) for role in sorted(merged)}

    # -- API keys ---------------------------------------------------------

    async def create_api_key(
        self, principal: Principal, request: KeyRequest
    ) -> tuple[ApiKeyRecord, str]:
        """Create a key; returns its record and its secret, which is stored
        only as a hash and so can be shown this once."""
        authorize(principal, "api_keys.write", request.tenant_id, field="/tenantId")
        if request.tenant_id is not None:
            await self.existing_tenant(request.tenant_id)
        self._may_set_rate(principal, request.publish_rate)
        now = self._clock()
        key = new_api_key()
        record = ApiKeyRecord(
            id="key_" + new_event_id()[4:],
            key_hash=hash_secret(key),
            name=request.name,
            scopes=request.scopes,
            tenant_id=request.tenant_id,
            created_at=now,
            expires_at=_expiry(request, now),
            publish_rate=request.publish_rate,
        )
        await self._store.create_api_key(record)
        return record, key

    def _may_set_rate(self, principal: Principal, rate: float | None) -> None:
        """Tenant-bound credentials may lower the platform's publish rate for
        a key, never lift or raise it."""
        default = self._publish_rate
        if rate is None or principal.tenant_id is None or default <= 0:
            return
        if rate == 0 or rate > default:
            raise Forbidden(
                f"a tenant-bound key may set publishRate from above 0 up to {default:g}",
                field="/publishRate",
            )

    async def list_api_keys(
        self, principal: Principal, tenant_id: str | None, *, revoked: bool | None = None
    ) -> list[ApiKeyRecord]:
        """The keys in the caller's scope, newest first; ``tenant_id``
        narrows, ``revoked`` keeps only the revoked (True) or live keys."""
        authorize(principal, "api_keys.list", scoped=False)
        if tenant_id is not None:
            authorize(principal, "api_keys.list", tenant_id, field="tenantId")
        records = await self._store.list_api_keys(principal.tenant_id or tenant_id)
        if revoked is None:
            return records
        return [r for r in records if (r.revoked_at is not None) == revoked]

    async def revoke_api_key(self, principal: Principal, key_id: str) -> None:
        """Revoke a key (twice is fine): 401 here before this returns, on
        the other processes once they get ``api_key_revoked``. A key out of
        the caller's scope is :class:`NotFound`, like a missing one."""
        authorize(principal, "api_keys.write", scoped=False)
        record = await self._store.get_api_key_by_id(key_id)
        if record is None or not in_scope(principal, record.tenant_id):
            raise NotFound(f"no API key {key_id!r}")  # not theirs: do not reveal it
        if record.revoked_at is None:
            await self._store.revoke_api_key(key_id, self._clock())
        await self._control("api_key_revoked", tenant=record.tenant_id, key=key_id)


def _permissions(values: Sequence[str], pointer: str) -> list[str]:
    """``values`` once each is a valid permission (else :class:`InvalidInput`
    at ``pointer/i``)."""
    for i, value in enumerate(values):
        parse_audience(f"permission:{value}", field=f"{pointer}/{i}")
    return list(values)


def _expiry(request: KeyRequest, now: float) -> float | None:
    if request.expires_at is not None and request.expires_in_s is not None:
        raise InvalidInput("give expiresAt or expiresInS, not both", field="/expiresInS")
    if request.expires_in_s is not None:
        return now + request.expires_in_s
    if request.expires_at is None:
        return None
    at = parse_instant(request.expires_at, "/expiresAt")
    if not math.isfinite(at) or not now < at <= now + MAX_KEY_LIFETIME_S:
        raise InvalidInput(
            "expiresAt must be in the future, at most ten years ahead", field="/expiresAt"
        )
    return at
