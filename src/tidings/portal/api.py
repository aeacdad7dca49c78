"""The portal's HTTP API (seed 004's contract): thin routes over the use
cases in :mod:`tidings.portal.tickets` and :mod:`tidings.portal.finance`.

Errors are Tidings' problem+json (``tidings.errors`` raised, rendered by
``tidings.http.problems``); bodies are checked by pydantic models, whose
422s name the field.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from tidings.errors import Unauthorized
from tidings.portal import accounts
from tidings.portal.auth import mint, password_matches, user_id_of

router = APIRouter(prefix="/api")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginIn(Strict):
    email: str = Field(min_length=3, max_length=320)
    password: str = Field(min_length=1, max_length=200)


def portal_of(request: Request) -> Any:
    return request.app.state.portal


async def caller(request: Request) -> dict[str, Any]:
    """The portal user of the request's bearer token (401 otherwise)."""
    portal = portal_of(request)
    user_id = user_id_of(portal.settings.jwt_secret, request.headers.get("authorization"))
    async with portal.engine.connect() as conn:
        row = await accounts.get_user(conn, user_id)
    if row is None:
        raise Unauthorized("the token's user does not exist")
    return accounts.user_json(row)


@router.post("/auth/login")
async def login(request: Request, body: LoginIn) -> dict[str, Any]:
    portal = portal_of(request)
    async with portal.engine.connect() as conn:
        row = await accounts.find_by_email(conn, body.email)
    if row is None or not password_matches(row.password_hash, body.password):
        raise Unauthorized("wrong email or password", field="/password")
    user = accounts.user_json(row)
    return {
        "accessToken": mint(portal.settings.jwt_secret, user, portal.settings.token_ttl_s),
        "tokenType": "Bearer",
        "user": user,
    }


@router.get("/me")
async def me(request: Request) -> dict[str, Any]:
    return await caller(request)
