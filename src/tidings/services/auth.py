"""Who is calling: bearer credentials -> a :class:`Principal`.

* ``Bearer <TIDINGS_ADMIN_KEY>``: the bootstrap operator, can do everything.
* ``Bearer tdk_...``: an API key, stored as a SHA-256 hash, with scopes
  (``publish``, ``admin``), optionally bound to one tenant, optionally
  expiring. An expired or revoked key is 401. Revocation drops the key from
  every process's cache (control message ``api_key_revoked``); when a key
  was last used is recorded at most once a minute per key, in the
  background (:meth:`Authenticator.flush_used`), never on the request path.
* ``Bearer <JWT>``: a user of a tenant. Claims ``sub`` (user id), ``tenant``
  and ``exp``; HS256 with ``TIDINGS_JWT_SECRET`` or RS256 from
  ``TIDINGS_JWKS_URL``. The user is loaded from the store and its audiences
  derived there, never from the token or the request.

Expired or forged tokens are 401; an unknown user or tenant is 403; a user
the operator deleted is :class:`StreamGone` (stream endpoints answer 204).

What each credential may do is decided in :mod:`tidings.services.access`. A platform
user derives its permissions from the global role defaults only: a
tenant's role overrides would otherwise let that tenant's admin widen what
the user sees in other tenants.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any

import jwt
from jwt.types import Options

from tidings.core.audience import UserRecord, Viewer
from tidings.errors import Forbidden, StreamGone, Unauthorized
from tidings.store.base import ApiKeyRecord, TenantRecord
from tidings.store.ports import Directory
from tidings.store.schema import GLOBAL_SCOPE

API_KEY_PREFIX = "tdk_"
# Tenant states (seed 001) whose users are shut out (streams closed, 204 on
# reconnect); READ_ONLY keeps streams and history, only publishes stop.
CLOSED_STATES = frozenset({"SUSPENDED", "DEPROVISIONING", "ARCHIVED"})
PUBLISHING_STATES = frozenset({"CREATED", "PROVISIONING", "ACTIVE"})
TICKET_PREFIX = "tkt_"
SCOPES = frozenset({"publish", "admin"})
LAST_USED_EVERY_S = 60.0  # "last used" is this precise: one write per key per minute at most


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def new_ticket() -> str:
    return TICKET_PREFIX + secrets.token_urlsafe(24)


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller. ``kind`` is admin | key | user."""

    kind: str
    tenant_id: str | None = None  # None: not bound to a tenant
    scopes: frozenset[str] = frozenset()
    user: UserRecord | None = None
    viewer: Viewer | None = None
    expires_at: float | None = None  # epoch seconds (JWT exp, API key expiry)
    key_id: str | None = None
    publish_rate: float | None = None  # the key's own rate (None: the default)

    @property
    def is_admin(self) -> bool:
        return self.kind == "admin" or "admin" in self.scopes

    def can_publish_to(self, tenant_id: str) -> bool:
        if self.kind == "user":
            return False
        if self.tenant_id is not None and self.tenant_id != tenant_id:
            return False
        return self.is_admin or "publish" in self.scopes


OPERATOR = Principal(kind="admin", scopes=frozenset({"admin", "publish"}))
"""The node itself, for what it writes in its own name (in-process
publishes, lifecycle events): the bootstrap admin's reach."""


class _TTLCache:
    """A small time-bounded cache; entries also dropped explicitly on local
    writes. Staleness across processes is bounded by ``ttl``."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._items: dict[Any, tuple[float, Any]] = {}

    def get(self, key: Any) -> Any:
        hit = self._items.get(key)
        if hit is None or hit[0] < time.monotonic():
            return None
        return hit[1]

    def put(self, key: Any, value: Any) -> None:
        if len(self._items) > 50_000:
            self._items.clear()
        self._items[key] = (time.monotonic() + self.ttl, value)

    def drop(self, key: Any = None) -> None:
        if key is None:
            self._items.clear()
        else:
            self._items.pop(key, None)

    def drop_values(self, match: Any) -> None:
        """Drop every entry whose value satisfies ``match`` (rare: a scan)."""
        for key in [k for k, (_, v) in self._items.items() if match(v)]:
            del self._items[key]


class Authenticator:
    def __init__(
        self,
        store: Directory,
        *,
        admin_key: str | None,
        jwt_secret: str | None,
        jwks_url: str | None = None,
        jwt_audience: str | None = None,
        cache_ttl: float = 5.0,
    ) -> None:
        self.store = store
        self._admin_hash = hash_secret(admin_key) if admin_key else None
        self._jwt_secret = jwt_secret
        self._jwks = jwt.PyJWKClient(jwks_url, cache_keys=True) if jwks_url else None
        self._audience = jwt_audience
        self.keys = _TTLCache(cache_ttl)
        self.roles = _TTLCache(cache_ttl)
        self.tenants = _TTLCache(cache_ttl)
        self._marked: dict[str, float] = {}  # key id -> monotonic time last marked used
        self._used: dict[str, float] = {}  # key id -> epoch of use, not yet stored

    # -- entry points ------------------------------------------------------

    async def authenticate(self, authorization: str | None) -> Principal:
        if not authorization:
            raise Unauthorized("missing Authorization: Bearer credential")
        scheme, _, credential = authorization.partition(" ")
        if scheme.lower() != "bearer" or not credential.strip():
            raise Unauthorized("the Authorization header must be 'Bearer <credential>'")
        return await self.from_credential(credential.strip())

    async def from_credential(self, credential: str) -> Principal:
        if self._admin_hash is not None and hmac.compare_digest(
            hash_secret(credential), self._admin_hash
        ):
            return Principal(kind="admin", scopes=SCOPES)
        if credential.startswith(API_KEY_PREFIX):
            return await self._api_key(credential)
        return await self._jwt_user(credential)

    async def user_principal(
        self, tenant_id: str, user_id: str, expires_at: float | None
    ) -> Principal:
        tenant = await self.tenant(tenant_id)
        if tenant is None:
            raise Forbidden(f"unknown tenant {tenant_id!r}")
        if tenant.state in CLOSED_STATES:
            raise StreamGone(f"tenant {tenant_id!r} is {tenant.state}", state=tenant.state)
        user = await self.store.get_user(tenant_id, user_id)
        if user is None:
            if await self.store.user_was_deleted(tenant_id, user_id):
                raise StreamGone(f"user {user_id!r} was deleted")
            raise Forbidden(f"unknown user {user_id!r} in tenant {tenant_id!r}")
        viewer = await self.viewer_for(user)
        return Principal(
            kind="user", tenant_id=tenant_id, user=user, viewer=viewer, expires_at=expires_at
        )

    async def viewer_for(self, user: UserRecord) -> Viewer:
        scope = GLOBAL_SCOPE if user.platform else user.tenant_id
        return Viewer.for_user(user, await self.role_defaults(scope))

    async def role_defaults(self, tenant_id: str) -> dict[str, frozenset[str]]:
        cached = self.roles.get(tenant_id)
        if cached is None:
            cached = await self.store.role_defaults(tenant_id)
            self.roles.put(tenant_id, cached)
        return dict(cached)

    async def tenant(self, tenant_id: str) -> TenantRecord | None:
        cached = self.tenants.get(tenant_id)
        if cached is None:
            cached = await self.store.get_tenant(tenant_id)
            if cached is not None:
                self.tenants.put(tenant_id, cached)
        return cached  # type: ignore[no-any-return]

    # -- credentials -------------------------------------------------------

    async def _api_key(self, credential: str) -> Principal:
        digest = hash_secret(credential)
        record: ApiKeyRecord | None = self.keys.get(digest)
        if record is None:
            record = await self.store.get_api_key(digest)
            if record is None:
                raise Unauthorized("unknown API key")
            self.keys.put(digest, record)
        return self._key_principal(record)

    async def key_principal(self, key_id: str) -> Principal:
        """The principal of the API key ``key_id`` as it stands now (an admin
        UI session made with it): 401 once it is revoked or expired."""
        record: ApiKeyRecord | None = self.keys.get(("id", key_id))
        if record is None:
            record = await self.store.get_api_key_by_id(key_id)
            if record is None:
                raise Unauthorized("unknown API key")
            self.keys.put(("id", key_id), record)
        return self._key_principal(record)

    def admin_fingerprint(self) -> str | None:
        """A short digest of the configured admin key (None: none is set),
        so what was granted under one admin key ends when it changes."""
        return None if self._admin_hash is None else hash_secret(self._admin_hash)[:16]

    def _key_principal(self, record: ApiKeyRecord) -> Principal:
        if record.revoked_at is not None:
            raise Unauthorized("this API key was revoked")
        if record.expires_at is not None and record.expires_at <= time.time():
            raise Unauthorized("this API key has expired", code_hint="key_expired")
        self._mark_used(record.id)
        return Principal(
            kind="key",
            tenant_id=record.tenant_id,
            scopes=record.scopes,
            key_id=record.id,
            expires_at=record.expires_at,
            publish_rate=record.publish_rate,
        )

    def forget_key(self, key_id: str) -> None:
        """Drop a (revoked) key from this process's cache."""
        self.keys.drop_values(lambda record: record.id == key_id)

    def _mark_used(self, key_id: str) -> None:
        # O(1) and no I/O: the first use in a minute is queued for flush_used.
        now = time.monotonic()
        if now - self._marked.get(key_id, -LAST_USED_EVERY_S) >= LAST_USED_EVERY_S:
            if len(self._marked) > 50_000:
                self._marked.clear()
            self._marked[key_id] = now
            self._used[key_id] = time.time()

    async def flush_used(self) -> None:
        """Store the queued "last used" times (one batch; periodic)."""
        used, self._used = self._used, {}
        try:
            await self.store.mark_api_keys_used(used)
        except BaseException:
            self._used = {**used, **self._used}  # try again next time
            raise

    async def _jwt_user(self, token: str) -> Principal:
        claims = await self.decode_jwt(token)
        return await self.user_principal(
            str(claims["tenant"]), str(claims["sub"]), float(claims["exp"])
        )

    async def decode_jwt(self, token: str) -> dict[str, Any]:
        options: Options = {"require": ["exp", "sub", "tenant"]}
        try:
            if self._jwks is not None:
                signing_key = await asyncio.to_thread(self._jwks.get_signing_key_from_jwt, token)
                return jwt.decode(
                    token,
                    signing_key.key,
                    algorithms=["RS256"],
                    audience=self._audience,
                    options=options,
                )
            if self._jwt_secret is None:
                raise Unauthorized(
                    "user tokens are not enabled (set TIDINGS_JWT_SECRET or TIDINGS_JWKS_URL)"
                )
            return jwt.decode(
                token,
                self._jwt_secret,
                algorithms=["HS256"],
                audience=self._audience,
                options=options,
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("the token has expired", code_hint="token_expired") from None
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"invalid token: {exc}") from None


def mint_token(
    secret: str, *, tenant_id: str, user_id: str, ttl_s: float = 3600, **claims: Any
) -> str:
    """An HS256 user token, as a host application would mint it (demo,
    tests, ``tidings token``)."""
    now = int(time.time())
    payload = {"sub": user_id, "tenant": tenant_id, "iat": now, "exp": now + int(ttl_s), **claims}
    return jwt.encode(payload, secret, algorithm="HS256")
