"""``/admin/rules``: the rules in the session's reach with their jobs'
counts, Enable/Disable/delete per row (htmx swaps the row), shipped rule
packs, and the builder (new and edit) with its template preview and dry
run against a sample event or the last N events of the log. Nothing here
runs an action: previews and dry runs only render."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Path, Request
from starlette.datastructures import FormData
from starlette.responses import Response

from tidings.automation.rules import rule_json
from tidings.core.envelope import iso_utc
from tidings.errors import InvalidInput, TidingsError
from tidings.http.automation import RULE_ID
from tidings.http.events import node
from tidings.http.manager.forms import json_field, pretty, tenant_choices, text
from tidings.http.manager.render import is_htmx, redirect, render
from tidings.http.manager.session import AdminPage
from tidings.services.rules import MAX_DRY_RUN_EVENTS, RuleStats
from tidings.services.sessions import AdminSession
from tidings.store.base import RuleRecord

router = APIRouter(include_in_schema=False)
RULES = "/admin/rules"
DEFAULT_DRY_RUN_EVENTS = 50

# A starting configuration per built-in action type (the builder's form).
SKELETONS: dict[str, dict[str, Any]] = {
    "send_email": {
        "to": "{{ data.email }}",
        "subject": "{{ type }} for {{ entityId }}",
        "body": "Hello, {{ type }} happened to {{ entityType }} {{ entityId }}.",
    },
    "trigger_webhook": {"url": "https://hooks.example.com/tidings", "timeout": 10},
    "send_notification": {
        "audience": "permission:tidings.admin",
        "title": "{{ type }}: {{ entityId }}",
        "body": "",
    },
    "publish_event": {"type": "", "data": {}},
    "run_job": {"name": "", "args": {}},
}
# The built-in actions' configuration as form fields (key, label, kind);
# kinds: text, textarea, number, json. The JSON field below them holds
# every key (a host action's, or a rarely used one) and is what is posted.
CONFIG_FIELDS: dict[str, list[tuple[str, str, str]]] = {
    "send_email": [
        ("to", "To", "text"),
        ("subject", "Subject", "text"),
        ("body", "Body (text)", "textarea"),
        ("html", "Body (HTML, optional)", "textarea"),
        ("cc", "Cc", "text"),
    ],
    "trigger_webhook": [
        ("url", "URL", "text"),
        ("timeout", "Timeout (s)", "number"),
        ("headers", "Extra headers (JSON object)", "json"),
    ],
    "send_notification": [
        ("audience", "Audience", "text"),
        ("title", "Title", "text"),
        ("body", "Body", "textarea"),
        ("link", "Link", "text"),
    ],
    "publish_event": [
        ("type", "Event type", "text"),
        ("entityType", "Entity type", "text"),
        ("entityId", "Entity id", "text"),
        ("data", "Data (JSON)", "json"),
    ],
    "run_job": [("name", "Job name", "text"), ("args", "Arguments (JSON)", "json")],
}
SAMPLE = {
    "type": "course.completed",  # no tenantId: the rule's own is assumed
    "entityType": "course",
    "entityId": "course-1",
    "actor": {"userId": "u-1"},
    "data": {"courseId": "course-1", "userId": "u-1", "score": 91},
}


# -- the list -------------------------------------------------------------------


@router.get(RULES)
async def rules_page(request: Request, session: AdminPage) -> Response:
    rules_service = node(request).rules
    records = sorted(
        await rules_service.list_rules(session.principal),
        key=lambda r: (-r.priority, r.name.casefold()),
    )
    context = {
        "title": "Rules",
        "rules": [_row(request, r) for r in records],
        "stats": _stats_view(await rules_service.stats(session.principal, records)),
        "packs": await rules_service.packs(session.principal),
        "tenants": await tenant_choices(request, session),
        "installed": request.query_params.get("installed"),
        "count": request.query_params.get("count"),
        "saved": request.query_params.get("saved"),
        "describe": describe_conditions,
    }
    return render(request, "rules.html", context, session=session)


def _row(request: Request, record: RuleRecord) -> dict[str, Any]:
    return rule_json(record, node(request).actions)


async def _row_response(request: Request, session: AdminSession, record: RuleRecord) -> Response:
    stats = _stats_view(await node(request).rules.stats(session.principal, [record]))
    context = {"rule": _row(request, record), "stats": stats, "describe": describe_conditions}
    return render(request, "_rules_row.html", context, session=session)


def _stats_view(stats: dict[str, RuleStats]) -> dict[str, dict[str, Any]]:
    """Each rule's job figures as the row shows them."""
    return {
        rule_id: {
            "failed": s.failed,
            "succeeded": s.counts.get("succeeded", 0),
            "pending": s.counts.get("pending", 0),
            "consecutive": s.consecutive_failures,
            "last_run": iso_utc(s.last_run) if s.last_run is not None else None,
        }
        for rule_id, s in stats.items()
    }


@router.post(RULES + "/{rule_id}/enable")
async def enable(
    request: Request, session: AdminPage, rule_id: str = Path(pattern=RULE_ID)
) -> Response:
    return await _set_enabled(request, session, rule_id, True)


@router.post(RULES + "/{rule_id}/disable")
async def disable(
    request: Request, session: AdminPage, rule_id: str = Path(pattern=RULE_ID)
) -> Response:
    return await _set_enabled(request, session, rule_id, False)


async def _set_enabled(
    request: Request, session: AdminSession, rule_id: str, enabled: bool
) -> Response:
    record = await node(request).rules.set_enabled(session.principal, rule_id, enabled)
    if is_htmx(request):
        return await _row_response(request, session, record)
    return redirect(request, RULES)


@router.post(RULES + "/{rule_id}/delete")
async def delete(
    request: Request, session: AdminPage, rule_id: str = Path(pattern=RULE_ID)
) -> Response:
    await node(request).rules.delete(session.principal, rule_id)
    if is_htmx(request):
        return Response(status_code=200)  # the row is swapped for nothing
    return redirect(request, RULES)


@router.post(RULES + "/packs")
async def install_pack(request: Request, session: AdminPage) -> Response:
    form = await request.form()
    name = text(form, "pack", 64)
    tenant_id = session.tenant_id or text(form, "tenant", 128) or None
    installed = await node(request).rules.install_shipped(session.principal, name, tenant_id)
    return redirect(request, f"{RULES}?installed={name}&count={len(installed)}")


# -- the builder ------------------------------------------------------------------


@router.get(RULES + "/new")
async def new_rule(request: Request, session: AdminPage) -> Response:
    form = {
        "name": "",
        "tenant": session.tenant_id or "",
        "priority": "0",
        "enabled": True,
        "trigger": request.query_params.get("trigger", ""),
        "conditions": pretty({"all": []}),
        "action_type": "send_notification",
        "config": pretty(SKELETONS["send_notification"]),
    }
    return await _builder(request, session, form)


@router.get(RULES + "/{rule_id}/edit")
async def edit_rule(
    request: Request, session: AdminPage, rule_id: str = Path(pattern=RULE_ID)
) -> Response:
    record = await node(request).rules.get(session.principal, rule_id)
    return await _builder(request, session, _form_of(request, record), rule_id=rule_id)


def _form_of(request: Request, record: RuleRecord) -> dict[str, Any]:
    """A stored rule as the builder's fields; secrets are left out (an edit
    keeps them)."""
    action = record.spec["action"]
    found = node(request).actions.get(action["type"])
    secret = found.secret_keys if found is not None else ()
    config = {k: v for k, v in action["config"].items() if k not in secret}
    return {
        "name": record.name,
        "tenant": record.tenant_id or "",
        "priority": str(record.priority),
        "enabled": record.enabled,
        "trigger": record.spec["trigger"]["type"],
        "conditions": pretty(record.spec["trigger"].get("conditions") or {"all": []}),
        "action_type": action["type"],
        "config": pretty(config),
    }


async def _builder(
    request: Request,
    session: AdminSession,
    form: dict[str, Any],
    *,
    rule_id: str | None = None,
    error: TidingsError | None = None,
) -> Response:
    tidings = node(request)
    action_types, _jobs = await tidings.rules.action_types(session.principal)
    catalog, _tenant = await tidings.catalog_types.visible(
        session.principal, session.tenant_id or form.get("tenant") or None
    )
    context = {
        "title": "Edit rule" if rule_id else "New rule",
        "rule_id": rule_id,
        "form": form,
        "error": error,
        "action_types": action_types,
        "skeletons": {name: pretty(config) for name, config in SKELETONS.items()},
        "config_fields": json.dumps(CONFIG_FIELDS),
        "type_names": [t.name for t in catalog],
        "modules": sorted({f"{t.module}.*" for t in catalog if t.module}),
        "tenants": await tenant_choices(request, session),
        "sample": pretty(SAMPLE),
        "max_events": MAX_DRY_RUN_EVENTS,
        "default_events": DEFAULT_DRY_RUN_EVENTS,
    }
    return render(
        request, "rule_builder.html", context, session=session, status=422 if error else 200
    )


def _fields(form: FormData) -> dict[str, Any]:
    return {
        "name": text(form, "name", 200),
        "tenant": text(form, "tenant", 128),
        "priority": text(form, "priority", 12) or "0",
        "enabled": form.get("enabled") is not None,
        "trigger": text(form, "trigger", 256),
        "conditions": text(form, "conditions", 256 * 1024),
        "action_type": text(form, "action_type", 64),
        "config": text(form, "config", 256 * 1024),
    }


def _body(form: FormData, session: AdminSession) -> dict[str, Any]:
    """The builder's fields as a rule in the API's JSON form; a bad field
    raises InvalidInput naming it."""
    fields = _fields(form)
    try:
        priority = int(fields["priority"])
    except ValueError:
        raise InvalidInput("priority must be a whole number", field="priority") from None
    if not fields["trigger"]:
        raise InvalidInput("the trigger event type or pattern is required", field="trigger")
    return {
        "name": fields["name"] or "rule",
        "tenantId": session.tenant_id or fields["tenant"] or None,
        "priority": priority,
        "enabled": fields["enabled"],
        "trigger": {
            "type": fields["trigger"],
            "conditions": json_field(form, "conditions", default={"all": []}, label="conditions"),
        },
        "action": {
            "type": fields["action_type"],
            "config": json_field(form, "config", default={}, label="action configuration"),
        },
    }


@router.post(RULES + "/new")
async def create_rule(request: Request, session: AdminPage) -> Response:
    form = await request.form()
    try:
        saved = await node(request).rules.create(session.principal, _body(form, session))
    except TidingsError as exc:
        return await _builder(request, session, _fields(form), error=exc)
    return redirect(request, f"{RULES}?saved={saved.record.id}")


@router.post(RULES + "/{rule_id}/edit")
async def save_rule(
    request: Request, session: AdminPage, rule_id: str = Path(pattern=RULE_ID)
) -> Response:
    form = await request.form()
    rules_service = node(request).rules
    try:
        existing = await rules_service.get(session.principal, rule_id)
        body = {**_body(form, session), "retry": existing.spec.get("retry")}
        await rules_service.replace(session.principal, rule_id, body)
    except TidingsError as exc:
        return await _builder(request, session, _fields(form), rule_id=rule_id, error=exc)
    return redirect(request, f"{RULES}?saved={rule_id}")


# -- trying a rule ----------------------------------------------------------------


@router.post(RULES + "/preview")
async def preview(request: Request, session: AdminPage) -> Response:
    """The action's templates rendered against the sample event."""
    form = await request.form()
    try:
        sample = _sample(form)
        rendered = await node(request).rules.preview(
            session.principal, _body(form, session), sample
        )
        context: dict[str, Any] = {"rendered": pretty(rendered["config"]), "error": None}
    except TidingsError as exc:
        context = {"rendered": None, "error": exc}
    return render(request, "_rule_preview.html", context, session=session)


@router.post(RULES + "/dry-run")
async def dry_run(request: Request, session: AdminPage) -> Response:
    """What the rule would have done, for the sample event or for each of
    the last N events of the log matching its trigger. Runs nothing."""
    form = await request.form()
    rules_service = node(request).rules
    context: dict[str, Any] = {"error": None, "source": text(form, "source", 10) or "sample"}
    try:
        # What the rule would do once enabled: the checkbox is not a reason not to match.
        body = {**_body(form, session), "enabled": True}
        if context["source"] == "log":
            limit = _limit(form)
            tried = await rules_service.test_log(session.principal, body, limit)
            pairs = list(zip(tried.events, tried.verdicts, strict=True))
            context |= {"limit": limit, "matched": tried.matched}
        else:
            sample = _sample(form)
            pairs = [(sample, await rules_service.test_new(session.principal, body, sample))]
            context |= {"matched": sum(1 for _e, v in pairs if v["matched"])}
        context["results"] = [
            {"event": e, "verdict": v, "actions": [pretty(a["config"]) for a in v["actions"]]}
            for e, v in pairs
        ]
    except TidingsError as exc:
        context["error"] = exc
    return render(request, "_rule_dry_run.html", context, session=session)


def _sample(form: FormData) -> dict[str, Any]:
    sample = json_field(form, "sample", label="sample event")
    if not isinstance(sample, dict):
        raise InvalidInput("the sample event must be a JSON object", field="sample")
    return sample


def _limit(form: FormData) -> int:
    raw = text(form, "limit", 6) or str(DEFAULT_DRY_RUN_EVENTS)
    try:
        limit = int(raw)
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_DRY_RUN_EVENTS:
        raise InvalidInput(f"choose 1 to {MAX_DRY_RUN_EVENTS} events", field="limit")
    return limit


# -- showing conditions -------------------------------------------------------------

OP_WORDS = {
    "eq": "=",
    "ne": "≠",
    "in": "in",
    "not_in": "not in",
    "gt": ">",
    "gte": "≥",
    "lt": "<",
    "lte": "≤",
    "contains": "contains",
    "starts_with": "starts with",
    "ends_with": "ends with",
}


def describe_conditions(node: Any, depth: int = 0) -> str:
    """Conditions as one readable line: ``data.score ≥ 80 and (…)``;
    '' for conditions that match every event."""
    if not isinstance(node, dict) or not node:
        return ""
    if "all" in node or "any" in node:
        word = " and " if "all" in node else " or "
        children = node.get("all", node.get("any")) or []
        parts = [describe_conditions(child, depth + 1) for child in children]
        if not parts:
            return "" if "all" in node else "never"
        joined = word.join(p or "always" for p in parts)
        return f"({joined})" if depth and len(parts) > 1 else joined
    if "not" in node:
        return f"not {describe_conditions(node['not'], depth + 1) or 'always'}"
    path, op, value = node.get("path"), node.get("op"), node.get("value")
    if op == "exists":
        return f"{path} {'exists' if value is not False else 'is absent'}"
    shown = value if isinstance(value, str) else pretty(value).replace("\n", "").replace("  ", "")
    return f"{path} {OP_WORDS.get(str(op), op)} {shown}"
