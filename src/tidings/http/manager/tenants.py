"""``/admin/tenants``: the tenants with their state and counts, creating
one; ``/admin/tenants/{id}``: a tenant's lifecycle (state, log, the moves
its state machine allows), users, role defaults and API keys.

Everything goes through :mod:`tidings.services.identity`,
:mod:`tidings.services.lifecycle` and
:mod:`tidings.services.tenant_overview`, which authorize with the
session's principal: a tenant-bound session sees its own tenant only,
another tenant's pages and posts answer 403 (a key of another tenant 404).

Each form is a plain POST form (hidden CSRF field) that htmx enhances: an
htmx post gets its section of the page back, with the outcome in it; a
plain one is redirected to the tenant's page, or (bad input) gets the page
again with the message and status 422/409. A new API key is the exception:
its secret exists only in this answer, so the page is rendered, never
redirected to.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Path, Request
from starlette.datastructures import FormData
from starlette.responses import Response

from tidings.core.envelope import iso_utc
from tidings.core.statemachine import TENANT_LIFECYCLE
from tidings.errors import Conflict, InvalidInput, NotFound, TidingsError
from tidings.http.admin import ID, NAME, USER_ID
from tidings.http.events import node
from tidings.http.manager.forms import text
from tidings.http.manager.render import is_htmx, redirect, render
from tidings.http.manager.session import AdminPage
from tidings.services.identity import MAX_KEY_LIFETIME_S, KeyRequest, UserChange
from tidings.services.sessions import AdminSession
from tidings.store.base import ApiKeyRecord

router = APIRouter(include_in_schema=False)

TENANTS = "/admin/tenants"
KEY_ID = r"^key_[0-9A-Za-z]{1,40}$"
MAX_LOG_ROWS = 100  # lifecycle rows shown, newest first
MAX_USERS = 200  # users listed (by id); more are edited by id through the form
MAX_PERMISSIONS = 500
SCOPES = ("publish", "admin")
NAME_HINT = "1-100 of A-Z a-z 0-9 _ . - :"
USER_ID_HINT = "1-200 of A-Z a-z 0-9 _ . - @ :"
FORM_ERRORS = (InvalidInput, Conflict)  # shown in the form; others are error pages

# How a state looks (badge class) and the button that moves a tenant there.
STATE_BADGES = {
    "CREATED": "info",
    "PROVISIONING": "info",
    "ACTIVE": "ok",
    "SUSPENDED": "warn",
    "READ_ONLY": "warn",
    "DEPROVISIONING": "bad",
    "ARCHIVED": "bad",
}
MOVE_VERBS = {
    "PROVISIONING": "Provision",
    "ACTIVE": "Activate",
    "SUSPENDED": "Suspend",
    "READ_ONLY": "Make read-only",
    "DEPROVISIONING": "Deprovision",
    "ARCHIVED": "Archive",
}
DESTRUCTIVE = frozenset({"SUSPENDED", "READ_ONLY", "DEPROVISIONING", "ARCHIVED"})


@dataclass(frozen=True, slots=True)
class KeyRow:
    """An API key as the page lists it (never its secret nor its hash)."""

    id: str
    name: str
    scopes: list[str]
    state: str  # live, expired, revoked
    created: str
    last_used: str | None
    expires: str | None
    revoked: str | None


# -- the list -------------------------------------------------------------


@router.get(TENANTS)
async def tenants(request: Request, session: AdminPage) -> Response:
    return await _list_page(request, session)


@router.post(TENANTS)
async def create_tenant(request: Request, session: AdminPage) -> Response:
    form = await request.form()
    identity = node(request).identity
    try:
        tenant_id = _field(form, "id", "Tenant id", pattern=ID, hint="1-64 letters, digits, . _ -")
        name = _field(form, "name", "Name", max_chars=200)
        _required(tenant_id, "id", "Tenant id")
        _required(name, "name", "Name")
        if await _tenant_exists(request, session, tenant_id):  # put_tenant would rename it
            raise InvalidInput(f"Tenant id: a tenant {tenant_id!r} exists already", field="id")
        await identity.put_tenant(session.principal, tenant_id, name, {})
    except FORM_ERRORS as exc:
        return await _list_page(request, session, error=str(exc), status=_status(exc))
    return redirect(request, f"{TENANTS}/{tenant_id}")


async def _tenant_exists(request: Request, session: AdminSession, tenant_id: str) -> bool:
    try:
        await node(request).identity.get_tenant(session.principal, tenant_id)
    except NotFound:
        return False
    return True


async def _list_page(
    request: Request, session: AdminSession, *, error: str | None = None, status: int = 200
) -> Response:
    page = await node(request).tenant_overview.summaries(session.principal)
    context = {
        "title": "Tenants",
        "summaries": page.items,
        "more": page.more,
        "created": {s.tenant.id: iso_utc(s.tenant.created_at) for s in page.items},
        "badges": STATE_BADGES,
        "error": error,
        "may_create": session.tenant_id is None,
    }
    return render(request, "tenants.html", context, session=session, status=status)


# -- one tenant -------------------------------------------------------------


@router.get(TENANTS + "/{tenant_id}")
async def tenant(
    request: Request, session: AdminPage, tenant_id: str = Path(pattern=ID)
) -> Response:
    return render(
        request, "tenant.html", await _tenant_context(request, session, tenant_id), session=session
    )


@router.post(TENANTS + "/{tenant_id}/transition")
async def transition(
    request: Request, session: AdminPage, tenant_id: str = Path(pattern=ID)
) -> Response:
    form = await request.form()
    try:
        to = _field(form, "to", "Target state", max_chars=64)
        reason = _field(form, "reason", "Reason", max_chars=2000)
        _required(to, "to", "Target state")
        move, _event = await node(request).lifecycle.transition_tenant(
            session.principal, tenant_id, to, reason=reason or None
        )
    except FORM_ERRORS as exc:
        return await _section(request, session, tenant_id, "lifecycle", error=str(exc), exc=exc)
    notice = f"Moved from {move.from_state} to {move.to_state}."
    return await _section(request, session, tenant_id, "lifecycle", notice=notice)


@router.post(TENANTS + "/{tenant_id}/users")
async def put_user(
    request: Request, session: AdminPage, tenant_id: str = Path(pattern=ID)
) -> Response:
    """Create a user, or update one (its system role and overrides; a
    platform user keeps its platform reach)."""
    form = await request.form()
    identity = node(request).identity
    try:
        user_id = _field(form, "user_id", "User id", pattern=USER_ID, hint=USER_ID_HINT)
        role = _field(form, "system_role", "System role", pattern=NAME, hint=NAME_HINT)
        _required(user_id, "user_id", "User id")
        _required(role, "system_role", "System role")
        grants = _permissions(form, "grants", "Grants")
        revokes = _permissions(form, "revokes", "Revokes")
        try:
            existing = await identity.get_user(session.principal, tenant_id, user_id)
        except NotFound:
            existing = None
        platform = existing is not None and existing.platform
        change = UserChange(
            system_role=role,
            grants=grants,
            revokes=revokes,
            resources=sorted(existing.resources) if existing is not None else (),
            platform=platform,
            platform_tenants=list(existing.platform_tenants) if platform and existing else None,
        )
        await identity.put_user(session.principal, tenant_id, user_id, change)
    except FORM_ERRORS as exc:
        return await _section(request, session, tenant_id, "users", error=str(exc), exc=exc)
    verb = "Updated" if existing is not None else "Created"
    return await _section(request, session, tenant_id, "users", notice=f"{verb} user {user_id}.")


@router.post(TENANTS + "/{tenant_id}/users/{user_id}/delete")
async def delete_user(
    request: Request,
    session: AdminPage,
    tenant_id: str = Path(pattern=ID),
    user_id: str = Path(pattern=USER_ID),
) -> Response:
    await node(request).identity.delete_user(session.principal, tenant_id, user_id)
    return await _section(request, session, tenant_id, "users", notice=f"Deleted user {user_id}.")


@router.post(TENANTS + "/{tenant_id}/roles")
async def put_role(
    request: Request, session: AdminPage, tenant_id: str = Path(pattern=ID)
) -> Response:
    """Set the tenant's own default permissions of a role."""
    form = await request.form()
    try:
        role = _field(form, "role", "Role", pattern=NAME, hint=NAME_HINT)
        _required(role, "role", "Role")
        permissions = _permissions(form, "permissions", "Permissions")
        await node(request).identity.put_role(session.principal, role, permissions, tenant_id)
    except FORM_ERRORS as exc:
        return await _section(request, session, tenant_id, "roles", error=str(exc), exc=exc)
    notice = f"Role {role} now grants {len(set(permissions))} permission(s) in this tenant."
    return await _section(request, session, tenant_id, "roles", notice=notice)


@router.post(TENANTS + "/{tenant_id}/keys")
async def create_key(
    request: Request, session: AdminPage, tenant_id: str = Path(pattern=ID)
) -> Response:
    form = await request.form()
    try:
        name = _field(form, "name", "Name", max_chars=200) or "api key"
        scopes = frozenset(str(s) for s in form.getlist("scopes"))
        if not scopes or not scopes <= set(SCOPES):
            raise InvalidInput("Scopes: choose publish, admin or both", field="scopes")
        wanted = KeyRequest(
            name=name,
            scopes=scopes,
            tenant_id=tenant_id,
            expires_in_s=_expiry_days(form),
        )
        record, secret = await node(request).identity.create_api_key(session.principal, wanted)
    except FORM_ERRORS as exc:
        return await _section(request, session, tenant_id, "keys", error=str(exc), exc=exc)
    context = await _tenant_context(request, session, tenant_id)
    context["new_key"] = {"id": record.id, "name": record.name, "secret": secret}
    return render(
        request,
        "_tenant_keys.html" if is_htmx(request) else "tenant.html",
        context,
        session=session,
    )


@router.post(TENANTS + "/{tenant_id}/keys/{key_id}/revoke")
async def revoke_key(
    request: Request,
    session: AdminPage,
    tenant_id: str = Path(pattern=ID),
    key_id: str = Path(pattern=KEY_ID),
) -> Response:
    identity = node(request).identity
    keys = await identity.list_api_keys(session.principal, tenant_id)
    if key_id not in {k.id for k in keys}:  # not this tenant's: do not reveal it
        raise NotFound(f"no API key {key_id!r} in tenant {tenant_id!r}")
    await identity.revoke_api_key(session.principal, key_id)
    return await _section(request, session, tenant_id, "keys", notice=f"Revoked {key_id}.")


# -- shared -----------------------------------------------------------------


async def _tenant_context(
    request: Request, session: AdminSession, tenant_id: str
) -> dict[str, Any]:
    """Everything the tenant page shows, each read authorized by its
    service (the first one refuses a tenant out of the session's scope)."""
    tidings, principal = node(request), session.principal
    record = await tidings.identity.get_tenant(principal, tenant_id)
    history = await tidings.lifecycle.tenant_history(principal, tenant_id)
    moves = await tidings.lifecycle.tenant_moves(principal, tenant_id)
    users = await tidings.identity.list_users(principal, tenant_id, limit=MAX_USERS + 1)
    roles = await tidings.identity.role_defaults(principal, tenant_id)
    keys = await tidings.identity.list_api_keys(principal, tenant_id)
    return {
        "title": f"Tenant {record.name}",
        "tenant": record,
        "created": iso_utc(record.created_at),
        "log": [_log_row(row) for row in reversed(history[-MAX_LOG_ROWS:])],
        "log_total": len(history),
        "moves": [
            {"to": to, "verb": MOVE_VERBS.get(to, f"Move to {to}"), "danger": to in DESTRUCTIVE}
            for to in moves
        ],
        "terminal": not TENANT_LIFECYCLE.allowed(record.state),
        "may_move": session.tenant_id is None,
        "badges": STATE_BADGES,
        "users": users[:MAX_USERS],
        "more_users": len(users) > MAX_USERS,
        "roles": roles,
        "role_names": sorted({*roles, *(u.system_role for u in users)}),
        "keys": [_key_row(k, time.time()) for k in keys],
        "live_keys": sum(1 for k in keys if k.revoked_at is None),
        "scopes": SCOPES,
        "errors": {},
        "notices": {},
    }


async def _section(
    request: Request,
    session: AdminSession,
    tenant_id: str,
    section: str,
    *,
    notice: str | None = None,
    error: str | None = None,
    exc: TidingsError | None = None,
) -> Response:
    """The answer to a form of ``section``: its fragment for htmx (200,
    so htmx swaps it in, message included), else the whole page with the
    error (422/409) or a redirect back to the page."""
    if not is_htmx(request) and error is None:
        return redirect(request, f"{TENANTS}/{tenant_id}#{section}")
    context = await _tenant_context(request, session, tenant_id)
    if error is not None:
        context["errors"] = {section: error}
    if notice is not None:
        context["notices"] = {section: notice}
    if is_htmx(request):
        return render(request, f"_tenant_{section}.html", context, session=session)
    status = _status(exc) if exc is not None else 422
    return render(request, "tenant.html", context, session=session, status=status)


def _status(exc: TidingsError) -> int:
    return 409 if isinstance(exc, Conflict) else 422


def _log_row(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "at": iso_utc(float(row["created_at"])),
        "from": row["from_state"],
        "to": row["to_state"],
        "reason": row["reason"],
        "source": row["trigger_source"],
        "by": row["triggered_by"],
    }


def _key_row(record: ApiKeyRecord, now: float) -> KeyRow:
    def when(epoch: float | None) -> str | None:
        return None if epoch is None else iso_utc(epoch)

    if record.revoked_at is not None:
        state = "revoked"
    elif record.expires_at is not None and record.expires_at <= now:
        state = "expired"
    else:
        state = "live"
    return KeyRow(
        id=record.id,
        name=record.name,
        scopes=sorted(record.scopes),
        state=state,
        created=iso_utc(record.created_at),
        last_used=when(record.last_used_at),
        expires=when(record.expires_at),
        revoked=when(record.revoked_at),
    )


# -- reading forms -----------------------------------------------------------


def _field(
    form: FormData,
    name: str,
    label: str,
    *,
    pattern: str | None = None,
    hint: str = "",
    max_chars: int = 200,
) -> str:
    """A text field, stripped; refused at once (nothing changed yet)."""
    return text(form, name, max_chars, label=label, pattern=pattern, hint=hint)


def _required(value: str, name: str, label: str) -> None:
    if not value:
        raise InvalidInput(f"{label}: required", field=name)


def _permissions(form: FormData, name: str, label: str) -> list[str]:
    """Permissions written one per line, or separated by spaces or commas
    (each is then checked by the service, which names the bad one)."""
    raw = form.get(name)
    values = [p for p in re.split(r"[\s,]+", raw if isinstance(raw, str) else "") if p]
    if len(values) > MAX_PERMISSIONS:
        raise InvalidInput(f"{label}: at most {MAX_PERMISSIONS}", field=name)
    return list(dict.fromkeys(values))


def _expiry_days(form: FormData) -> float | None:
    raw = form.get("expires_in_days")
    text = raw.strip() if isinstance(raw, str) else ""
    if not text:
        return None
    try:
        days = float(text)
    except ValueError:
        days = -1.0
    if not 0 < days * 86400 <= MAX_KEY_LIFETIME_S:
        raise InvalidInput(
            "Expires in (days): a number from above 0 up to 3650", field="expires_in_days"
        )
    return days * 86400
