"""``/admin/integrations``: inbound integrations (seed 001's integration
hooks) and what they received.

* ``GET /admin/integrations``: every integration (scheme, mappings) and the
  form that creates one; ``POST`` creates it with a generated secret.
* ``GET /admin/integrations/{name}``: its mappings, how callers sign, and
  its audit log of received calls (signature ok or failed, duplicate,
  mapped action).
* ``POST /admin/integrations/{name}/rotate``: a new secret.

A secret is shown once, in the answer to the post that made it (a fragment
for htmx, a page otherwise: a redirect would lose it); no page shows it
again. Integrations are platform-wide: a tenant-bound key is refused by
:class:`~tidings.services.inbound.Inbound` and told so on the page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from tidings.core.envelope import iso_utc
from tidings.errors import Conflict, Forbidden, InvalidInput
from tidings.http.events import node
from tidings.http.inbound import NAME
from tidings.http.manager.forms import field_text, refusal
from tidings.http.manager.render import is_htmx, render
from tidings.http.manager.session import AdminPage
from tidings.services.inbound import SCHEMES
from tidings.services.sessions import AdminSession

router = APIRouter(include_in_schema=False)

NAME_RE = re.compile(NAME)
MAX_MAPPINGS_CHARS = 64 * 1024
EXAMPLE_MAPPINGS = (
    '{\n  "BILLING_SUSPEND": {"transition": "SUSPENDED"},\n'
    '  "BILLING_REACTIVATE": {"transition": "ACTIVE"}\n}'
)
PLATFORM_ONLY = (
    "Inbound integrations are platform-wide: only the admin key or a global admin API key "
    "sees and changes them. This session's key is bound to a tenant."
)


@dataclass(frozen=True, slots=True)
class CallView:
    """One audit row as the log shows it."""

    at: str
    webhook_id: str | None
    signature: str  # "ok" | "failed"
    result: str  # "accepted" | "duplicate" | "refused"
    badge: str
    outcome: str
    external_type: str | None
    tenant_id: str | None

    @classmethod
    def of(cls, row: dict[str, Any]) -> CallView:
        outcome = str(row["outcome"])
        if row["accepted"]:
            signature, result, badge = "ok", "accepted", "ok"
        elif outcome.startswith("duplicate"):
            signature, result, badge = "ok", "duplicate", "info"
        else:
            signature = "failed" if _signature_refusal(outcome) else "ok"
            result, badge = "refused", "bad" if signature == "failed" else "warn"
        return cls(
            at=iso_utc(float(row["created_at"])),
            webhook_id=row.get("webhook_id"),
            signature=signature,
            result=result,
            badge=badge,
            outcome=outcome,
            external_type=row.get("external_type"),
            tenant_id=row.get("tenant_id"),
        )


@router.get("/admin/integrations")
async def integrations_page(request: Request, session: AdminPage) -> Response:
    return await _list(request, session, {})


@router.post("/admin/integrations")
async def create_integration(request: Request, session: AdminPage) -> Response:
    form = await request.form()
    given = {k: field_text(form.get(k)).strip() for k in ("name", "scheme", "mappings")}
    try:
        mappings = _mappings(given["mappings"])
        if not NAME_RE.fullmatch(given["name"]):
            raise InvalidInput("1 to 100 letters, digits, '.', '_' or '-'", field="name")
        secret = await node(request).inbound.create(
            session.principal, given["name"], scheme=given["scheme"], mappings=mappings
        )
    except (InvalidInput, Conflict) as exc:
        return await _list(request, session, given, error=refusal(exc), status=422)
    context = {"name": given["name"], "secret": secret, "created": True}
    return _secret_answer(request, session, context)


@router.get("/admin/integrations/{name}")
async def integration_page(request: Request, name: str, session: AdminPage) -> Response:
    inbound = node(request).inbound
    integration = await inbound.get(session.principal, name)
    calls = [CallView.of(row) for row in await inbound.history(session.principal, name)]
    context = {
        "title": f"Integration {name}",
        "integration": integration,
        "mappings": [(k, _effect(v)) for k, v in sorted(integration["mappings"].items())],
        "calls": calls,
        "failed": sum(1 for c in calls if c.signature == "failed"),
    }
    return render(request, "integration.html", context, session=session)


@router.post("/admin/integrations/{name}/rotate")
async def rotate_secret(request: Request, name: str, session: AdminPage) -> Response:
    secret = await node(request).inbound.rotate_secret(session.principal, name)
    return _secret_answer(request, session, {"name": name, "secret": secret, "created": False})


# -- helpers --------------------------------------------------------------------


async def _list(
    request: Request,
    session: AdminSession,
    given: dict[str, str],
    *,
    error: str | None = None,
    status: int = 200,
) -> Response:
    try:
        rows = await node(request).inbound.integrations(session.principal)
    except Forbidden:
        refused = {"title": "Integrations", "forbidden": PLATFORM_ONLY}
        return render(request, "integrations.html", refused, session=session, status=403)
    context: dict[str, Any] = {
        "title": "Integrations",
        "rows": [
            {**row, "updated": iso_utc(row["updated_at"]), "effects": len(row["mappings"])}
            for row in rows
        ],
        "schemes": SCHEMES,
        "given": {"scheme": SCHEMES[0], "mappings": EXAMPLE_MAPPINGS, **given},
        "error": error,
    }
    if is_htmx(request) and error:  # htmx swaps 2xx answers only: the form with its message
        return render(request, "_integrations_create.html", context, session=session)
    return render(request, "integrations.html", context, session=session, status=status)


def _secret_answer(request: Request, session: AdminSession, context: dict[str, Any]) -> Response:
    """The new secret, once: a fragment for htmx, else a page of its own."""
    if is_htmx(request):
        return render(request, "_integrations_secret.html", context, session=session)
    return render(
        request, "integration_secret.html", {"title": "New secret", **context}, session=session
    )


def _mappings(text: str) -> dict[str, Any]:
    if len(text) > MAX_MAPPINGS_CHARS:
        raise InvalidInput(f"at most {MAX_MAPPINGS_CHARS:,} characters", field="mappings")
    if not text:
        return {}
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"not valid JSON ({exc})", field="mappings") from None
    if not isinstance(value, dict):
        raise InvalidInput("a JSON object of external event -> effect", field="mappings")
    return value


def _effect(effect: dict[str, Any]) -> str:
    """A mapping's effect in words."""
    if "transition" in effect:
        return f"move the tenant to {effect['transition']}"
    spec = effect.get("publish") or {}
    return f"publish {spec.get('type', '?')}"


def _signature_refusal(outcome: str) -> bool:
    """Did the call fail verification (rather than mapping)? Verification's
    refusals name the signature or the timestamp (services/inbound.py)."""
    lowered = outcome.lower()
    return "signature" in lowered or "timestamp" in lowered
