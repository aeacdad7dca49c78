"""The rules in force in this process, and every change to them.

The :class:`RuleBook` keeps the compiled rules in memory and hands the
store a :class:`RuleSet` of the enabled ones, which every append matches
against (the outbox). Changes made here apply at once in this process and
reach the others through a control message; a cheap version check every
few seconds catches changes made elsewhere (``tidings rules`` on the same
database, a lost notification).

Disabling is one path (:meth:`RuleBook.disable`) for every cause, an
endpoint gone (HTTP 410) or failing past the limits: the rule is disabled
once (of racing processes one wins), with its reason; a tenant's rule then
publishes ``rule.disabled`` (audience ``permission:tidings.admin``) and
notifies the tenant's admins, the users holding that permission. A global
rule is the operator's: it is logged, not announced to tenants. Saving the
rule enabled again starts a new count of failures.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from tidings.automation.actions import ActionRegistry, CheckContext, known_keys
from tidings.automation.rules import Rule, compile_rule, normalize_spec
from tidings.automation.templates import event_context
from tidings.automation.webhook import new_secret
from tidings.core.catalog import Catalog
from tidings.core.conditions import Condition, compile_conditions
from tidings.core.envelope import iso_utc
from tidings.core.ids import new_monotonic_ulid
from tidings.core.patterns import Glob, compile_pattern
from tidings.core.triggers import RuleSet
from tidings.errors import InvalidInput, NotFound, TidingsError
from tidings.periodic import Periodic
from tidings.services.ports import Control, Notifier, Publisher
from tidings.store.base import RuleRecord
from tidings.store.jobs import HEALTH_KEY, FailingRule
from tidings.supervision import Supervisor

if TYPE_CHECKING:
    from tidings.store.ports import Store  # its EventLog and JobQueue (store.jobs) roles

log = logging.getLogger("tidings.automation")
RULE_KEYS = {"name", "tenantId", "priority", "enabled", "trigger", "action", "retry", "author"}
SECRET_GRACE_S = 24 * 3600  # a rotated-out webhook secret still signs for a day
ADMIN_PERMISSION = "tidings.admin"  # a tenant's admins: told when a rule is disabled


class RuleBook:
    """Uses the store's ``JobQueue`` role (rules, their version, disabling)
    and hands the store its :class:`RuleSet`; checks configurations with
    ``actions`` against ``catalogs(tenant_id)``; announces every change with
    ``control("rules_changed")``; a disabled tenant rule is published with
    ``publish`` and told to the tenant's admins through ``notifier``."""

    def __init__(
        self,
        store: Store,
        actions: ActionRegistry,
        *,
        catalogs: Callable[[str | None], Catalog],
        control: Control,
        publish: Publisher,
        notifier: Notifier,
        allow_private_webhooks: bool = False,
        refresh_s: float = 5.0,
    ) -> None:
        self.store = store
        self.actions = actions
        self._catalogs = catalogs
        self._control = control
        self._publish = publish
        self._notifier = notifier
        self._allow_private = allow_private_webhooks
        self.refresh_s = refresh_s
        self.rules: dict[str, Rule] = {}
        self._version: tuple[int, float] | None = None
        # Catches changes made elsewhere (the CLI, a lost notification).
        self._poller = Periodic(refresh_s, self.refresh, log, "rules")

    # -- the in-memory view -----------------------------------------------

    async def load(self) -> None:
        version = await self.store.jobs.rules_version()
        compiled: dict[str, Rule] = {}
        for record in await self.store.jobs.list_rules():
            try:
                compiled[record.id] = compile_rule(record)
            except InvalidInput as exc:  # stored by a newer version, or edited by hand
                log.error("rule %s cannot be compiled: %s", record.id, exc)
        self.rules = compiled
        self._version = version
        enabled = [r.trigger for r in compiled.values() if r.enabled]
        self.store.jobs.use_rules(RuleSet(enabled) if enabled else None)

    async def refresh(self) -> None:
        if await self.store.jobs.rules_version() != self._version:
            await self.load()

    def start(self, supervisor: Supervisor) -> None:
        self._poller.start(supervisor)

    async def stop(self) -> None:
        await self._poller.stop()

    def first_delays(self) -> dict[str, float]:
        """Each rule's delay before its first attempt (for new jobs)."""
        return {r.id: r.trigger.first_delay for r in self.rules.values() if r.trigger.first_delay}

    async def get(self, rule_id: str) -> Rule | None:
        """A rule by id, reloading once if this process has not seen it."""
        if rule_id not in self.rules:
            await self.load()
        return self.rules.get(rule_id)

    def check_context(self, tenant_id: str | None) -> CheckContext:
        """What the configuration checks of a rule scoped to ``tenant_id`` consult."""
        return CheckContext(
            tenant_id=tenant_id,
            catalog=self._catalogs(tenant_id),
            jobs=self.actions.jobs,
            allow_private_webhooks=self._allow_private,
        )

    # -- changes ------------------------------------------------------------

    async def save(
        self, body: Mapping[str, Any], *, rule_id: str | None = None, author: str | None = None
    ) -> tuple[RuleRecord, str | None]:
        """Create (``rule_id`` None) or replace a rule. Returns the record
        and, when the server generated a webhook secret, that secret (shown
        once)."""
        existing = await self.store.jobs.get_rule(rule_id) if rule_id else None
        spec, generated = self._spec_of(body, existing)
        tenant_id = body.get("tenantId")
        if existing is not None and _same_endpoint(existing, spec, bool(body.get("enabled", True))):
            spec[HEALTH_KEY] = existing.spec[HEALTH_KEY]  # an edit keeps counting
        now = time.time()
        record = RuleRecord(
            id=rule_id or "rul_" + new_monotonic_ulid(),
            tenant_id=tenant_id,
            name=str(body.get("name") or "rule"),
            spec=spec,
            priority=int(body.get("priority") or 0),
            enabled=bool(body.get("enabled", True)),
            author=body.get("author") or author or (existing.author if existing else None),
            created_at=existing.created_at if existing else now,
            updated_at=now,
        )
        await self._store_and_announce(record)
        return record, generated

    def check(self, body: Mapping[str, Any]) -> None:
        """Raise the :class:`InvalidInput` that saving ``body`` would, and
        store nothing."""
        self._spec_of(body, None)

    def _spec_of(
        self, body: Mapping[str, Any], existing: RuleRecord | None
    ) -> tuple[dict[str, Any], str | None]:
        """The stored spec of ``body`` replacing ``existing``, and the webhook
        secret generated for it, if one was."""
        known_keys(body, "", RULE_KEYS)
        generated = None
        body = dict(body)
        action = dict(body.get("action") or {})
        config = dict(action.get("config") or {})
        if action.get("type") == "trigger_webhook" and not config.get("secret"):
            old = existing.spec["action"]["config"] if existing is not None else {}
            config["secret"] = old.get("secret") or new_secret()  # keep it across edits
            generated = None if old.get("secret") else config["secret"]
            config.setdefault("previousSecrets", old.get("previousSecrets", []))
        action["config"] = config
        body["action"] = action
        spec = normalize_spec(body, self.actions, self.check_context(body.get("tenantId")))
        return spec, generated

    async def delete(self, record: RuleRecord) -> None:
        await self._store_and_announce(
            replace(record, deleted_at=time.time(), updated_at=time.time())
        )

    async def disable(
        self, rule_id: str, reason: str, *, failing: FailingRule | None = None
    ) -> RuleRecord | None:
        """Stop a rule whose endpoint is gone (HTTP 410) or keeps failing
        (``failing``); an operator re-enables it with a PUT. Returns the
        disabled rule, or None when it was not enabled (or another process
        disabled it first: that one announces it)."""
        record = await self.store.jobs.disable_rule(rule_id, reason, time.time())
        if record is None:
            return None
        log.warning("rule %s disabled: %s", rule_id, reason)
        await self._control("rules_changed")
        if record.tenant_id is not None:
            try:
                await self._announce_disabled(record, reason, failing)
            except TidingsError as exc:  # e.g. the tenant is suspended: the rule stays off
                log.warning("rule %s: rule.disabled not announced: %s", rule_id, exc)
        return record

    async def _announce_disabled(
        self, record: RuleRecord, reason: str, failing: FailingRule | None
    ) -> None:
        assert record.tenant_id is not None
        data: dict[str, Any] = {
            "tenantId": record.tenant_id,
            "ruleId": record.id,
            "ruleName": record.name,
            "reason": reason,
            "cause": "failing" if failing is not None else "gone",
            "disabledAt": iso_utc(record.updated_at),
        }
        if failing is not None:
            data["consecutiveFailures"] = failing.failures
            data["failingSince"] = iso_utc(failing.since)
            data["lastError"] = failing.last_detail[:500]
        event = {
            "type": "rule.disabled",
            "tenantId": record.tenant_id,
            "entityType": "rule",
            "entityId": record.id,
            "data": data,
        }
        key = f"rule.disabled:{record.id}:{record.updated_at!r}"
        published = await self._publish(event, idempotency_key=key)
        notifications = self._notifier
        admins = await notifications.members(record.tenant_id, f"permission:{ADMIN_PERMISSION}")
        for user_id in admins:
            await notifications.create(
                record.tenant_id,
                user_id,
                type="rule.disabled",
                title=f"Rule {record.name!r} was disabled",
                body=reason,
                source_event_id=published.id,
            )

    async def rotate_secret(self, record: RuleRecord, secret: str | None) -> tuple[RuleRecord, str]:
        """A new webhook secret; the old one keeps signing (alongside) for
        :data:`SECRET_GRACE_S`, so receivers can switch without a gap."""
        action = record.spec["action"]
        if action["type"] != "trigger_webhook":
            raise InvalidInput("only trigger_webhook rules have a secret", field="/action/type")
        now = time.time()
        config = dict(action["config"])
        fresh = secret or new_secret()
        kept = [
            old
            for old in config.get("previousSecrets") or []
            if isinstance(old, dict) and float(old.get("expiresAt", 0)) > now
        ]
        config["previousSecrets"] = [
            {"secret": config["secret"], "expiresAt": now + SECRET_GRACE_S},
            *kept,
        ]
        config["secret"] = fresh
        body = {**body_of(record), "action": {"type": action["type"], "config": config}}
        saved, _ = await self.save(body, rule_id=record.id)
        return saved, fresh

    async def _store_and_announce(self, record: RuleRecord) -> None:
        await self.store.jobs.put_rule(record)
        await self._control("rules_changed")

    # -- dry run ------------------------------------------------------------

    def dry_run(self, body: Mapping[str, Any], sample: Mapping[str, Any]) -> dict[str, Any]:
        """Would this rule fire for ``sample``, and with what rendered
        configuration? Runs nothing."""
        return self.dry_run_many(body, [sample])[0]

    def dry_run_many(
        self, body: Mapping[str, Any], samples: Sequence[Mapping[str, Any]]
    ) -> list[dict[str, Any]]:
        """:meth:`dry_run` for each of ``samples``, the rule checked and
        compiled once. Runs nothing."""
        spec = normalize_spec(body, self.actions, self.check_context(body.get("tenantId")))
        pattern = compile_pattern(spec["trigger"]["type"])
        conditions = compile_conditions(spec["trigger"]["conditions"])
        return [self._verdict(body, spec, pattern, conditions, sample) for sample in samples]

    def preview(self, body: Mapping[str, Any], sample: Mapping[str, Any]) -> dict[str, Any]:
        """The rule's action configuration rendered against ``sample``
        (matched or not; secrets masked). Runs nothing."""
        spec = normalize_spec(body, self.actions, self.check_context(body.get("tenantId")))
        return self._rendered(body, spec["action"], _sample_event(body, sample))

    def _verdict(
        self,
        body: Mapping[str, Any],
        spec: Mapping[str, Any],
        pattern: Glob,
        conditions: Condition,
        sample: Mapping[str, Any],
    ) -> dict[str, Any]:
        event = _sample_event(body, sample)
        reasons: list[str] = []
        tenant = body.get("tenantId")
        if tenant is not None and event.get("tenantId") != tenant:
            reasons.append(f"the rule is scoped to tenant {tenant!r}")
        trigger = spec["trigger"]
        if not isinstance(event.get("type"), str) or not pattern.matches(event["type"]):
            reasons.append(f"type {event.get('type')!r} does not match {trigger['type']!r}")
        if not conditions.matches(event):
            reasons.append("the conditions do not match")
        if body.get("enabled") is False:
            reasons.append("the rule is disabled")
        result: dict[str, Any] = {"matched": not reasons, "reasons": reasons, "actions": []}
        if not reasons:
            result["actions"] = [self._rendered(body, spec["action"], event)]
        return result

    def _rendered(
        self, body: Mapping[str, Any], action: Mapping[str, Any], event: Mapping[str, Any]
    ) -> dict[str, Any]:
        variables = event_context(event, rule={"id": body.get("id"), "name": body.get("name")})
        rendered = self.actions.render(action["type"], action["config"], variables)
        return {"type": action["type"], "config": self.actions.shown(action["type"], rendered)}

    async def require(self, rule_id: str) -> RuleRecord:
        record = await self.store.jobs.get_rule(rule_id)
        if record is None or record.deleted_at is not None:
            raise NotFound(f"no rule {rule_id!r}")
        return record


def _sample_event(body: Mapping[str, Any], sample: Mapping[str, Any]) -> dict[str, Any]:
    event = dict(sample)
    event.setdefault("tenantId", body.get("tenantId"))
    event.setdefault("data", {})
    return event


def body_of(record: RuleRecord) -> dict[str, Any]:
    """A stored rule as the API's JSON body (without its failure count)."""
    spec = {k: v for k, v in record.spec.items() if k != HEALTH_KEY}
    return {
        "name": record.name,
        "tenantId": record.tenant_id,
        "priority": record.priority,
        "enabled": record.enabled,
        **spec,
    }


def _same_endpoint(existing: RuleRecord, spec: Mapping[str, Any], enabled: bool) -> bool:
    """An edit of a rule that stays enabled, with the same action: its run
    of failures goes on. Re-enabling or a new endpoint starts afresh."""
    return (
        HEALTH_KEY in existing.spec
        and existing.enabled
        and enabled
        and existing.spec.get("action") == spec["action"]
    )
