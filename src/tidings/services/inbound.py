"""Inbound webhooks from external systems (seed 001's edge and integration
hooks): verify, deduplicate, map to an internal effect, audit.

Per integration: a secret, a signature scheme and a mapping from external
event names to effects - a tenant transition (``BILLING_SUSPEND`` ->
``{"transition": "SUSPENDED"}``) or a published event (``{"publish":
{"type", "data", "audiences"}}``).

* ``standard-webhooks``: verified with the ``standardwebhooks`` library
  (``webhook-id``, ``webhook-timestamp`` within 5 minutes,
  ``webhook-signature``).
* ``hmac-sha256``: ``X-Signature: sha256=<hex of HMAC(secret, "<ts>.<body>")>``
  with ``X-Timestamp`` (epoch seconds, within 5 minutes) and an optional
  ``X-Webhook-Id``.

Integrations are configured by platform credentials only (operation
``integrations`` of :mod:`tidings.services.access`), checked before
anything is read or written.

Every call leaves one audit row (accepted or rejected, and why). A webhook
id already accepted is a replay: answered 200 ``duplicate`` and ignored.

Invariant: verification raises nothing but :class:`Unauthorized`, whatever
the headers hold (non-ASCII text, Unicode digits, huge numbers), and a
secret the scheme cannot use is refused when the integration is saved
(``check_secret``), so no stored integration can answer 500.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping
from typing import Any

import orjson
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from tidings.core.statemachine import TENANT_LIFECYCLE
from tidings.errors import Conflict, InvalidInput, NotFound, TidingsError, Unauthorized
from tidings.services.access import authorize
from tidings.services.auth import Principal
from tidings.services.ports import Publisher, TenantTransitions
from tidings.store.ports import Integrations

SCHEMES = ("standard-webhooks", "hmac-sha256")
TOLERANCE_S = 300


def check_secret(secret: str, scheme: str) -> None:
    """Refuse a secret the scheme cannot sign with (422 on ``/secret``)."""
    if scheme != "standard-webhooks":
        return
    try:
        Webhook(secret)
    except ValueError:  # not base64 (after an optional whsec_ prefix)
        raise InvalidInput(
            "a Standard Webhooks secret is base64 (optionally prefixed whsec_)", field="/secret"
        ) from None


def new_secret(scheme: str) -> str:
    """A fresh random secret in the form ``scheme`` signs with (192 bits)."""
    raw = secrets.token_bytes(24)
    if scheme == "standard-webhooks":
        return "whsec_" + base64.b64encode(raw).decode()
    return raw.hex()


def check_mappings(mappings: Mapping[str, Any]) -> None:
    """Refuse a mapping that could never work, naming the field."""
    for name, effect in mappings.items():
        where = f"/mappings/{name}"
        if (
            not isinstance(effect, dict)
            or len(effect) != 1
            or next(iter(effect))
            not in (
                "transition",
                "publish",
            )
        ):
            raise InvalidInput(
                'a mapping is {"transition": STATE} or {"publish": {...}}', field=where
            )
        if "transition" in effect and effect["transition"] not in TENANT_LIFECYCLE.states:
            raise InvalidInput(
                f"unknown tenant state {effect['transition']!r}", field=f"{where}/transition"
            )
        if "publish" in effect:
            spec = effect["publish"]
            if not isinstance(spec, dict) or not isinstance(spec.get("type"), str):
                raise InvalidInput("publish needs at least a type", field=f"{where}/publish/type")


def verify_hmac(secret: str, body: bytes, headers: Mapping[str, str], now: float) -> str | None:
    signature = headers.get("x-signature", "")
    stamp = headers.get("x-timestamp", "")
    if not (stamp.isascii() and stamp.isdigit()):  # int() takes other digits: "²"
        raise Unauthorized("missing or malformed X-Timestamp")
    if abs(now - int(stamp)) > TOLERANCE_S:
        raise Unauthorized("X-Timestamp is too old or too new")
    expected = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    # bytes: compare_digest refuses str with non-ASCII characters
    given = signature.removeprefix("sha256=").encode("utf-8", "replace")
    if not hmac.compare_digest(given, expected.encode()):
        raise Unauthorized("signature mismatch")
    return headers.get("x-webhook-id")


def verify_signature(
    integration: Mapping[str, Any], body: bytes, headers: Mapping[str, str]
) -> str | None:
    """The webhook id of a correctly signed call (``headers`` lower-cased);
    :class:`Unauthorized` for anything else."""
    if integration["scheme"] == "hmac-sha256":
        return verify_hmac(integration["secret"], body, headers, time.time())
    try:
        Webhook(integration["secret"]).verify(body, dict(headers), json_parse=False)
    except WebhookVerificationError as exc:
        raise Unauthorized(f"signature verification failed: {exc}") from None
    except ValueError:  # non-ASCII signature, or a secret saved before check_secret
        raise Unauthorized("signature verification failed: malformed signature") from None
    return headers.get("webhook-id")


class Inbound:
    """Uses the store's ``Integrations`` role (integrations and their audit
    log); a mapped effect is a tenant move through ``transition_tenant`` or
    an event through ``publish``."""

    def __init__(
        self, store: Integrations, *, transition_tenant: TenantTransitions, publish: Publisher
    ) -> None:
        self.store = store
        self._transition_tenant = transition_tenant
        self._publish = publish

    async def configure(
        self,
        principal: Principal,
        name: str,
        *,
        secret: str,
        scheme: str,
        mappings: Mapping[str, Any],
    ) -> None:
        """Create or replace integration ``name``; a secret the scheme cannot
        use or a mapping that could never work is refused (422) unstored."""
        authorize(principal, "integrations")
        check_secret(secret, scheme)
        check_mappings(mappings)
        await self.store.put_integration(name, secret, scheme, mappings)

    async def integrations(self, principal: Principal) -> list[dict[str, Any]]:
        """Every integration by name (``name``, ``scheme``, ``mappings``,
        ``updated_at``), never its secret."""
        authorize(principal, "integrations")
        return await self.store.list_integrations()

    async def get(self, principal: Principal, name: str) -> dict[str, Any]:
        """One integration without its secret; 404 when there is none."""
        authorize(principal, "integrations")
        found = await self.store.get_integration(name)
        if found is None:
            raise NotFound(f"unknown integration {name!r}")
        return {k: v for k, v in found.items() if k != "secret"}

    async def create(
        self, principal: Principal, name: str, *, scheme: str, mappings: Mapping[str, Any]
    ) -> str:
        """A new integration with a generated secret, returned (the only time
        it is shown); 409 if ``name`` is taken, 422 for a bad mapping."""
        authorize(principal, "integrations")
        if scheme not in SCHEMES:
            raise InvalidInput(f"scheme is one of {', '.join(SCHEMES)}", field="scheme")
        check_mappings(mappings)
        if await self.store.get_integration(name) is not None:
            raise Conflict(f"an integration named {name!r} exists already", field="name")
        secret = new_secret(scheme)
        await self.store.put_integration(name, secret, scheme, mappings)
        return secret

    async def rotate_secret(self, principal: Principal, name: str) -> str:
        """Replace the integration's secret with a new random one, returned
        (the only time it is shown); calls signed with the old one fail from
        now on. 404 when there is no such integration."""
        authorize(principal, "integrations")
        found = await self.store.get_integration(name)
        if found is None:
            raise NotFound(f"unknown integration {name!r}")
        secret = new_secret(found["scheme"])
        await self.store.put_integration(name, secret, found["scheme"], found["mappings"])
        return secret

    async def history(self, principal: Principal, name: str) -> list[dict[str, Any]]:
        """The integration's audit rows, newest first (``webhook_id``,
        ``accepted``, ``outcome``, ``external_type``, ``tenant_id``, ``created_at``)."""
        authorize(principal, "integrations")
        return await self.store.inbound_history(name)

    async def receive(self, name: str, body: bytes, headers: Mapping[str, str]) -> dict[str, Any]:
        integration = await self.store.get_integration(name)
        if integration is None:
            raise NotFound(f"unknown integration {name!r}")
        lowered = {k.lower(): v for k, v in headers.items()}
        try:
            webhook_id = verify_signature(integration, body, lowered)
        except Unauthorized as exc:
            await self.store.record_inbound(
                name, lowered.get("webhook-id"), accepted=False, outcome=f"refused: {exc.detail}"
            )
            raise
        if webhook_id and await self.store.inbound_seen(name, webhook_id):
            await self.store.record_inbound(
                name, webhook_id, accepted=False, outcome="duplicate: already processed"
            )
            return {"status": "duplicate", "webhookId": webhook_id}
        try:
            payload = orjson.loads(body)
            if not isinstance(payload, dict):
                raise InvalidInput("the body must be a JSON object", field="")
            outcome, external, tenant = await self._apply(integration, payload)
        except orjson.JSONDecodeError:
            error: TidingsError = InvalidInput("the body is not valid JSON", field="")
            await self.store.record_inbound(
                name, webhook_id, accepted=False, outcome=f"refused: {error.detail}"
            )
            raise error from None
        except TidingsError as exc:
            await self.store.record_inbound(
                name, webhook_id, accepted=False, outcome=f"refused: {exc}"
            )
            raise
        await self.store.record_inbound(
            name,
            webhook_id,
            accepted=True,
            outcome=outcome,
            external_type=external,
            tenant_id=tenant,
        )
        return {"status": "accepted", "webhookId": webhook_id, "outcome": outcome}

    async def _apply(
        self, integration: Mapping[str, Any], payload: dict[str, Any]
    ) -> tuple[str, str, str]:
        external = payload.get("type")
        tenant_id = payload.get("tenantId")
        if not isinstance(external, str):
            raise InvalidInput("type is required", field="/type")
        if not isinstance(tenant_id, str):
            raise InvalidInput("tenantId is required", field="/tenantId")
        effect = integration["mappings"].get(external)
        if effect is None:
            raise InvalidInput(
                f"integration {integration['name']!r} maps no event {external!r}", field="/type"
            )
        if "transition" in effect:
            move, _event = await self._transition_tenant(
                tenant_id,
                effect["transition"],
                reason=str(payload.get("reason") or external),
                triggered_by=integration["name"],
                trigger_source="integration",
            )
            return f"tenant {tenant_id} {move.from_state} -> {move.to_state}", external, tenant_id
        spec = dict(effect["publish"])
        data = {**spec.get("data", {}), **(payload.get("data") or {})}
        result = await self._publish({**spec, "tenantId": tenant_id, "data": data})
        return f"published {spec['type']} {result.id} at {result.position}", external, tenant_id
