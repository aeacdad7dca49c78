"""Sessions of the Integration Manager (``/admin``): an operator logs in
once with the admin key or an admin-scoped API key and gets a signed,
expiring session token (the UI keeps it in an HttpOnly cookie).

Guarantees:

* Only an admin credential opens a session: the admin key, or an API key
  with the ``admin`` scope (then bound to that key's tenant, if any). User
  tokens and publish-only keys are refused.
* A session is checked again on every request, not only when it is made:
  a revoked or expired API key ends its sessions at once (within the key
  cache's TTL on other processes), and so does changing the admin key.
* Tokens are HS256 JWTs (PyJWT) with audience ``tidings-admin``; they are
  signed with ``session_secret``, else a key derived from the admin key,
  so every process of a deployment accepts every other's sessions. With
  neither set, a random per-process key is used (and said at start):
  sessions then hold on this process only and end with it.
* Each session has its own CSRF token, derived from its id: a form
  posted with another session's token, or none, is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

import jwt

from tidings.errors import Forbidden, Unauthorized
from tidings.services.auth import SCOPES, Authenticator, Principal

AUDIENCE = "tidings-admin"
ALGORITHM = "HS256"


@dataclass(frozen=True, slots=True)
class AdminSession:
    """A logged-in operator: who (``principal``), since/until when, and the
    CSRF token every state-changing form of theirs must carry."""

    principal: Principal
    session_id: str
    csrf: str
    expires_at: float
    label: str  # what the UI shows: "admin key" or "API key <id>"

    @property
    def tenant_id(self) -> str | None:
        """The tenant the session is bound to (None: every tenant)."""
        return self.principal.tenant_id


class AdminSessions:
    """Open and check admin UI sessions (see the module's guarantees)."""

    def __init__(
        self,
        auth: Authenticator,
        *,
        secret: str | None,
        admin_key: str | None,
        ttl_s: float,
    ) -> None:
        self.auth = auth
        self.ttl_s = ttl_s
        material = secret or admin_key
        self.per_process = material is None
        seed = material.encode() if material is not None else secrets.token_bytes(32)
        self._key = hmac.new(seed, b"tidings admin session v1", hashlib.sha256).digest()

    async def open(self, credential: str) -> tuple[str, AdminSession]:
        """A new session for ``credential``: (token, session). 401 for a
        credential that is not valid, 403 for one that is not an admin's."""
        principal = await self.auth.from_credential(credential.strip())
        if principal.kind == "user" or not principal.is_admin:
            raise Forbidden("only the admin key or an API key with the admin scope may log in")
        now = time.time()
        expires = now + self.ttl_s
        if principal.expires_at is not None:
            expires = min(expires, principal.expires_at)
        claims: dict[str, object] = {
            "aud": AUDIENCE,
            "iat": int(now),
            "exp": int(expires),
            "sid": secrets.token_urlsafe(16),
            "kind": principal.kind,
        }
        if principal.kind == "key":
            claims["kid"] = principal.key_id
        else:
            claims["akf"] = self.auth.admin_fingerprint()
        token = jwt.encode(claims, self._key, algorithm=ALGORITHM)
        return token, await self.check(token)

    async def check(self, token: str) -> AdminSession:
        """The session ``token`` stands for, as of now; 401 if it expired,
        was forged, or its credential no longer holds."""
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                options={"require": ["exp", "sid", "kind"]},
            )
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"the admin session is not valid: {exc}") from None
        kind = claims["kind"]
        admin_now = self.auth.admin_fingerprint()
        if kind == "key" and isinstance(claims.get("kid"), str):
            principal = await self.auth.key_principal(claims["kid"])
            if not principal.is_admin:
                raise Unauthorized("the API key of this session no longer has the admin scope")
            label = f"API key {principal.key_id}"
        elif kind == "admin" and admin_now is not None and claims.get("akf") == admin_now:
            principal = Principal(kind="admin", scopes=SCOPES)
            label = "admin key"
        else:
            raise Unauthorized("the credential of this admin session is gone")
        session_id = str(claims["sid"])
        return AdminSession(
            principal=principal,
            session_id=session_id,
            csrf=self._csrf(session_id),
            expires_at=float(claims["exp"]),
            label=label,
        )

    def csrf_holds(self, session: AdminSession, given: str | None) -> bool:
        """Whether ``given`` is this session's CSRF token (constant time)."""
        return given is not None and hmac.compare_digest(given, session.csrf)

    def _csrf(self, session_id: str) -> str:
        return hmac.new(self._key, b"csrf:" + session_id.encode(), hashlib.sha256).hexdigest()[:32]
