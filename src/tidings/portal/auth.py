"""Passwords (argon2id via ``argon2-cffi``) and the portal's user tokens.

A token is an HS256 JWT signed with the hub's ``TIDINGS_JWT_SECRET``, so the
hub accepts it too (``/api/events``, ``/api/events/tickets``,
``/api/notifications``): ``sub`` is the user id, ``tenant`` the user's
Tidings tenant (its organisation; OPS: :data:`OPS_TENANT`), plus ``role``
and ``email`` for the pages.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from tidings.errors import Unauthorized

OPS_TENANT = "ops"  # the Tidings tenant OPS users live in (platform users over every org)
_hasher = PasswordHasher()


async def hash_password(password: str) -> str:
    """argon2 costs tens of milliseconds of CPU by design: it runs in a
    worker thread (argon2-cffi releases the GIL), never on the event loop."""
    return await asyncio.to_thread(_hasher.hash, password)


_NOBODY = _hasher.hash("no user has this password")


async def password_matches(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` is the one hashed. ``None`` (no such user) costs
    the same verification, so timing does not tell which emails exist. In a
    worker thread, like :func:`hash_password`: a flood of logins never
    stalls the streams."""
    return await asyncio.to_thread(_verify, password_hash, password)


def _verify(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _NOBODY, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def hub_tenant_of(role: str, organisation_id: str | None) -> str:
    """The Tidings tenant a portal user belongs to."""
    return organisation_id if organisation_id is not None else OPS_TENANT


def mint(secret: str, user: dict[str, Any], ttl_s: float) -> str:
    now = int(time.time())
    claims = {
        "sub": user["id"],
        "tenant": hub_tenant_of(user["role"], user["organisationId"]),
        "role": user["role"],
        "email": user["email"],
        "iat": now,
        "exp": now + int(ttl_s),
    }
    return jwt.encode(claims, secret, algorithm="HS256")


def user_id_of(secret: str, authorization: str | None) -> str:
    """The user id of a valid ``Authorization: Bearer`` token, else 401."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("a Bearer token is required (POST /api/auth/login)")
    try:
        claims = jwt.decode(
            token, secret, algorithms=["HS256"], options={"require": ["sub", "exp"]}
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("the token has expired: log in again") from None
    except jwt.PyJWTError:
        raise Unauthorized("invalid token") from None
    return str(claims["sub"])
