"""Automation rules: the API's JSON <-> a checked, compiled :class:`Rule`.

A rule (DESIGN §4)::

    {"name": "...", "tenantId": null, "priority": 0, "enabled": true,
     "trigger": {"type": "TICKET_*", "conditions": {"all": [...]}},
     "action": {"type": "trigger_webhook", "config": {...}},
     "retry": {"schedule": [0, 5, 300]}}

Everything is checked before a rule is stored: the type pattern, the
conditions, the action type and its configuration (templates compile,
webhook URLs are public unless allowed, secrets are ``whsec_``), the retry
policy. Each refusal names the field as a JSON pointer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tidings.automation.actions import ActionRegistry, CheckContext, known_keys
from tidings.core.conditions import compile_conditions
from tidings.core.patterns import compile_pattern
from tidings.core.retry import RetryPolicy, parse_retry
from tidings.core.triggers import RuleTrigger
from tidings.errors import InvalidInput
from tidings.store.base import RuleRecord


@dataclass(frozen=True, slots=True)
class Rule:
    record: RuleRecord
    trigger: RuleTrigger
    action_type: str
    config: Mapping[str, Any]
    retry: RetryPolicy

    @property
    def id(self) -> str:
        return self.record.id

    @property
    def tenant_id(self) -> str | None:
        return self.record.tenant_id

    @property
    def enabled(self) -> bool:
        return self.record.enabled and self.record.deleted_at is None


def normalize_spec(
    body: Mapping[str, Any], actions: ActionRegistry, ctx: CheckContext
) -> dict[str, Any]:
    """Check a rule's ``trigger``, ``action`` and ``retry`` and return them
    in stored form (raises InvalidInput naming the field)."""
    trigger = body.get("trigger")
    if not isinstance(trigger, Mapping):
        raise InvalidInput("trigger is required: {type, conditions}", field="/trigger")
    known_keys(trigger, "/trigger", {"type", "conditions"})
    pattern = trigger.get("type")
    if not isinstance(pattern, str):
        raise InvalidInput(
            "trigger.type is required: an event type or pattern", field="/trigger/type"
        )
    try:
        compile_pattern(pattern)
    except InvalidInput:
        raise InvalidInput(f"invalid type pattern {pattern!r}", field="/trigger/type") from None
    conditions = compile_conditions(trigger.get("conditions"), field="/trigger/conditions")
    pattern = known_type(pattern, ctx)
    action = body.get("action")
    if not isinstance(action, Mapping):
        raise InvalidInput("action is required: {type, config}", field="/action")
    known_keys(action, "/action", {"type", "config"})
    action_type = action.get("type")
    if not isinstance(action_type, str):
        raise InvalidInput("action.type is required", field="/action/type")
    config = action.get("config") or {}
    if not isinstance(config, Mapping):
        raise InvalidInput("action.config must be an object", field="/action/config")
    actions.check(action_type, config, ctx)
    retry = parse_retry(body.get("retry"), field="/retry")
    return {
        "trigger": {"type": pattern, "conditions": conditions.to_json()},
        "action": {"type": action_type, "config": dict(config)},
        "retry": retry.to_json(),
    }


def known_type(pattern: str, ctx: CheckContext) -> str:
    """An exact trigger type must be in the catalog (a typo would never
    fire); ``<module>.<type>`` (seed 001's ``lms.course.completed``) names
    the catalog's ``course.completed`` of module ``lms``. Patterns with
    wildcards may match types added later."""
    if "*" in pattern or "?" in pattern:
        return pattern
    catalog = ctx.catalog
    if pattern in catalog:
        return pattern
    module, _, name = pattern.partition(".")
    found = catalog.find(name) if name else None
    if found is not None and found.module == module:
        return name
    raise InvalidInput(
        f"unknown event type {pattern!r} (use a pattern such as 'qms.*' for types "
        "not in the catalog yet)",
        field="/trigger/type",
    )


def compile_rule(record: RuleRecord) -> Rule:
    """A stored rule, ready to match and run (its spec was checked on save)."""
    spec = record.spec
    retry = parse_retry(spec.get("retry"))
    trigger = RuleTrigger(
        rule_id=record.id,
        tenant_id=record.tenant_id,
        priority=record.priority,
        type_pattern=spec["trigger"]["type"],
        conditions=compile_conditions(spec["trigger"].get("conditions")),
        first_delay=retry.first_delay(),
    )
    action = spec["action"]
    return Rule(record, trigger, action["type"], action.get("config") or {}, retry)


def rule_json(rule: RuleRecord, actions: ActionRegistry) -> dict[str, Any]:
    spec = rule.spec
    action = spec["action"]
    return {
        "id": rule.id,
        "name": rule.name,
        "tenantId": rule.tenant_id,
        "priority": rule.priority,
        "enabled": rule.enabled,
        "disabledReason": rule.disabled_reason,
        "trigger": spec["trigger"],
        "action": {
            "type": action["type"],
            "config": actions.shown(action["type"], action["config"]),
        },
        "retry": spec["retry"],
        "author": rule.author,
        "createdAt": rule.created_at,
        "updatedAt": rule.updated_at,
    }
