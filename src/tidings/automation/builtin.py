"""The built-in actions (DESIGN §4): ``send_email``, ``trigger_webhook``,
``send_notification``, ``publish_event`` and ``run_job``.

Each is idempotent per job where the other side allows it: e-mails carry a
``Message-ID`` and webhooks a ``webhook-id`` that stay the same across
retries (receivers de-duplicate on them), follow-up events are published
with the job as idempotency key (exactly once).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from tidings.automation.actions import (
    ActionContext,
    ActionRegistry,
    ActionType,
    CheckContext,
    PermanentActionError,
    known_keys,
    require,
)
from tidings.automation.email import send_email, validate_addresses
from tidings.automation.outcome import ActionOutcome
from tidings.automation.urls import check_webhook_url
from tidings.automation.webhook import CLOUDEVENTS_MODES, check_secret, deliver_webhook
from tidings.core.audience import parse_audience
from tidings.errors import InvalidInput, TidingsError

MAX_CHAIN_DEPTH = 8  # publish_event chains deeper than this are cut (a rule loop)


def install(registry: ActionRegistry) -> None:
    for action in (
        ActionType(
            "send_email",
            _send_email,
            _check_email,
            "E-mail through SMTP; Jinja2 subject/body over the event",
            builtin=True,
        ),
        ActionType(
            "trigger_webhook",
            _trigger_webhook,
            _check_webhook,
            "POST the event, signed per Standard Webhooks",
            secret_keys=("secret", "previousSecrets"),
            builtin=True,
        ),
        ActionType(
            "send_notification",
            _send_notification,
            _check_notification,
            "In-app notification for every user of an audience",
            builtin=True,
        ),
        ActionType(
            "publish_event",
            _publish_event,
            _check_publish,
            "Publish a follow-up event (chaining, seed 001 trigger_workflow)",
            builtin=True,
        ),
        ActionType(
            "run_job",
            _run_job,
            _check_run_job,
            "Run a job the host application registered by name",
            builtin=True,
        ),
    ):
        registry.add(action)


# -- send_email -------------------------------------------------------------

EMAIL_KEYS = {"to", "subject", "body", "html", "from", "cc", "headers"}


def _check_email(config: Mapping[str, Any], where: str, ctx: CheckContext) -> None:
    known_keys(config, where, EMAIL_KEYS)
    to = require(config, "to", where, (str, list))
    if not _templated(to):
        validate_addresses(to, f"{where}/to")
    require(config, "subject", where)
    require(config, "body", where)


async def _send_email(ctx: ActionContext, config: dict[str, Any]) -> ActionOutcome:
    smtp = ctx.host.smtp
    if smtp is None:
        return ActionOutcome.failed("SMTP is not configured (smtp_url)", permanent=True)
    sender = config.get("from") or ctx.tenant.settings.get("emailFrom")
    try:
        to = validate_addresses(config["to"], "/action/config/to")
        cc = validate_addresses(config["cc"], "/action/config/cc") if config.get("cc") else []
    except InvalidInput as exc:
        return ActionOutcome.failed(str(exc), permanent=True)
    return await send_email(
        smtp,
        sender=sender,
        to=to + cc,
        subject=str(config["subject"]),
        body=str(config["body"]),
        html=config.get("html"),
        message_id=f"job-{ctx.job.id}.{ctx.event['id']}@tidings",
        headers=config.get("headers"),
    )


# -- trigger_webhook ----------------------------------------------------------

WEBHOOK_KEYS = {"url", "secret", "previousSecrets", "headers", "timeout", "cloudevents"}


def _check_webhook(config: Mapping[str, Any], where: str, ctx: CheckContext) -> None:
    known_keys(config, where, WEBHOOK_KEYS)
    url = require(config, "url", where)
    if not _templated(url):
        check_webhook_url(url, allow_private=ctx.allow_private_webhooks, field=f"{where}/url")
    check_secret(require(config, "secret", where), f"{where}/secret")
    for i, old in enumerate(config.get("previousSecrets") or []):
        value = old.get("secret") if isinstance(old, dict) else old
        check_secret(str(value or ""), f"{where}/previousSecrets/{i}")
    headers = config.get("headers") or {}
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise InvalidInput("headers must map names to strings", field=f"{where}/headers")
    timeout = config.get("timeout", 15)
    if not isinstance(timeout, int | float) or isinstance(timeout, bool) or not 0 < timeout <= 60:
        raise InvalidInput("timeout must be 0 < seconds <= 60", field=f"{where}/timeout")
    mode = config.get("cloudevents")
    if mode is not None and mode not in CLOUDEVENTS_MODES:
        raise InvalidInput(
            f"cloudevents must be one of {', '.join(CLOUDEVENTS_MODES)} (or absent)",
            field=f"{where}/cloudevents",
        )


def signing_secrets(config: Mapping[str, Any], now: float) -> list[str]:
    """The current secret first, then rotated-out ones still in their grace
    period: receivers holding either verify."""
    secrets = [str(config["secret"])]
    for old in config.get("previousSecrets") or []:
        if isinstance(old, dict):
            if float(old.get("expiresAt", 0)) > now:
                secrets.append(str(old["secret"]))
        else:
            secrets.append(str(old))
    return secrets


async def _trigger_webhook(ctx: ActionContext, config: dict[str, Any]) -> ActionOutcome:
    allow_private = ctx.host.allow_private_webhooks
    try:
        check_webhook_url(str(config["url"]), allow_private=allow_private)
    except InvalidInput as exc:
        return ActionOutcome.failed(exc.detail, permanent=True)
    return await deliver_webhook(
        ctx.http,
        url=str(config["url"]),
        secrets=signing_secrets(config, time.time()),
        msg_id=f"job_{ctx.job.id}",
        event_type=str(ctx.event["type"]),
        data=ctx.event,
        headers=config.get("headers"),
        timeout=float(config.get("timeout", 15)),
        allow_private=allow_private,
        cloudevents=config.get("cloudevents"),
    )


# -- send_notification ---------------------------------------------------------

NOTIFICATION_KEYS = {"audience", "title", "body", "link", "type"}


def _check_notification(config: Mapping[str, Any], where: str, ctx: CheckContext) -> None:
    known_keys(config, where, NOTIFICATION_KEYS)
    audience = require(config, "audience", where)
    if not _templated(audience):
        parse_audience(audience, field=f"{where}/audience")
    require(config, "title", where)


async def _send_notification(ctx: ActionContext, config: dict[str, Any]) -> ActionOutcome:
    notifications, tenant_id = ctx.host.notifications, ctx.tenant_id
    try:
        audience = parse_audience(config["audience"], field="/action/config/audience")
    except InvalidInput as exc:
        raise PermanentActionError(f"audience rendered to {config['audience']!r}: {exc}") from None
    users = await notifications.members(tenant_id, audience)
    for user_id in users:
        await notifications.create(
            tenant_id,
            user_id,
            type=str(config.get("type") or ctx.event["type"]),
            title=str(config["title"]),
            body=str(config.get("body") or ""),
            link=config.get("link") or None,
            source_event_id=str(ctx.event["id"]),
        )
    return ActionOutcome(True, f"{len(users)} notification(s) for {audience}")


# -- publish_event -------------------------------------------------------------

PUBLISH_KEYS = {"type", "data", "audiences", "entityId", "entityType", "action"}


def _check_publish(config: Mapping[str, Any], where: str, ctx: CheckContext) -> None:
    known_keys(config, where, PUBLISH_KEYS)
    event_type = require(config, "type", where)
    if not _templated(event_type) and event_type not in ctx.catalog:
        raise InvalidInput(f"unknown event type {event_type!r}", field=f"{where}/type")
    if not isinstance(config.get("data", {}), dict):
        raise InvalidInput("data must be an object", field=f"{where}/data")


async def _publish_event(ctx: ActionContext, config: dict[str, Any]) -> ActionOutcome:
    source = ctx.event
    depth = int((source.get("metadata") or {}).get("chainDepth", 0)) + 1
    if depth > MAX_CHAIN_DEPTH:
        raise PermanentActionError(
            f"chain deeper than {MAX_CHAIN_DEPTH} events (a rule loop?): not published"
        )
    envelope: dict[str, Any] = {
        "type": config["type"],
        "tenantId": ctx.tenant_id,
        "data": config.get("data") or {},
        "metadata": {"causationId": source["id"], "ruleId": ctx.rule.id, "chainDepth": depth},
    }
    for key in ("audiences", "entityId", "entityType", "action"):
        if config.get(key) is not None:
            envelope[key] = config[key]
    try:
        result = await ctx.host.publish(envelope, idempotency_key=f"job:{ctx.job.id}")
    except TidingsError as exc:
        if exc.retryable:
            return ActionOutcome.failed(str(exc))
        raise PermanentActionError(str(exc)) from None
    return ActionOutcome(True, f"published {result.id} at {result.position}")


# -- run_job -------------------------------------------------------------------


def _check_run_job(config: Mapping[str, Any], where: str, ctx: CheckContext) -> None:
    known_keys(config, where, {"name", "args"})
    name = require(config, "name", where)
    if name not in ctx.jobs:
        known = ", ".join(sorted(ctx.jobs)) or "none registered"
        raise InvalidInput(f"unknown job {name!r} (known: {known})", field=f"{where}/name")
    if not isinstance(config.get("args", {}), dict):
        raise InvalidInput("args must be an object", field=f"{where}/args")


async def _run_job(ctx: ActionContext, config: dict[str, Any]) -> Any:
    job = ctx.host.jobs.get(str(config["name"]))
    if job is None:
        raise PermanentActionError(f"job {config['name']!r} is not registered in this process")
    return await job(ctx, dict(config.get("args") or {}))


def _templated(value: Any) -> bool:
    if isinstance(value, list):
        return any(_templated(v) for v in value)
    return isinstance(value, str) and ("{{" in value or "{%" in value)
