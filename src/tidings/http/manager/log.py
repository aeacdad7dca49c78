"""``/admin/log``: the live log, an event's page, and the filtered log as
NDJSON.

* ``GET /admin/log``: the filters (the query parameters of
  ``/api/events/log``: ``tenantId``, ``types``, ``entityType``,
  ``entityId``, ``entityIdContains``, ``since``, ``until``) and the newest
  events, newest first. Bad filters: the page with a message naming the
  field, and no rows.
* ``GET /admin/log/tail?after=P``: the rows after position ``P`` (htmx
  polls it about once a second while the page is open and not paused):
  one bounded query per call, nothing when nobody looks.
* ``GET /admin/log/export``: the filtered log as NDJSON, oldest first (the
  same service iterator as ``GET /api/events/export``).
* ``GET /admin/log/{event_id}?tenantId=T``: the envelope, its audiences,
  the rules that matched it and their jobs.

Every read goes through :class:`tidings.services.history.History` with the
session's principal (a tenant-bound key sees only its tenant; redaction as
for the API).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from tidings.core.envelope import iso_utc
from tidings.errors import Forbidden, InvalidInput, NotFound
from tidings.http.events import log_request, ndjson_response, node
from tidings.http.manager.render import render
from tidings.http.manager.session import AdminPage
from tidings.http.params import ascii_int
from tidings.node import Tidings
from tidings.services.history import EXPORT_PAGE, LogRequest
from tidings.services.sessions import AdminSession
from tidings.store.base import JobFilter

router = APIRouter(include_in_schema=False)

# (query parameter, label, input type, placeholder) of the filter form.
FILTERS: tuple[tuple[str, str, str, str], ...] = (
    ("tenantId", "Tenant", "text", "all tenants"),
    ("types", "Type", "text", "qms.*, TICKET_*"),
    ("entityType", "Entity type", "text", "car"),
    ("entityId", "Entity id", "text", "exact id"),
    ("entityIdContains", "Entity id contains", "search", "text"),
    ("since", "Since (UTC)", "datetime-local", ""),
    ("until", "Until (UTC)", "datetime-local", ""),
)
PAGE_ROWS = 50  # rows shown when the page opens
TAIL_ROWS = 25  # rows one poll adds, at most (the newest; a person reads no more a second)
MAX_JOBS = 100  # jobs shown on an event's page


def chosen_filters(request: Request, session: AdminSession) -> dict[str, str]:
    """The non-empty filters of the request (a tenant-bound session's own
    tenant by default)."""
    params = request.query_params
    chosen = {name: params[name].strip() for name, *_ in FILTERS if params.get(name, "").strip()}
    if session.tenant_id and "tenantId" not in chosen:
        chosen["tenantId"] = session.tenant_id
    return chosen


def _wanted(filters: dict[str, str], limit: int) -> LogRequest:
    return log_request(filters, cursor=None, limit=limit, newest_first=True)


@router.get("/admin/log")
async def live_log(request: Request, session: AdminPage) -> Response:
    history = node(request).history
    filters = chosen_filters(request, session)
    context: dict[str, Any] = {"title": "Live log", "filters": filters, "fields": FILTERS}
    try:
        viewer = history.reader(session.principal, filters.get("tenantId"))
        tail = await history.tail(viewer, _wanted(filters, PAGE_ROWS), None)
    except (InvalidInput, Forbidden) as exc:
        context.update(error=_refusal(exc), rows=[], after=None)
        return render(request, "log.html", context, session=session, status=422)
    context.update(
        rows=tail.items,
        tail_url=_url("/admin/log/tail", {**filters, "after": str(tail.after)}),
        export_url=_url("/admin/log/export", filters),
    )
    return render(request, "log.html", context, session=session)


@router.get("/admin/log/tail")
async def live_rows(request: Request, session: AdminPage) -> Response:
    """The poller row (asking after the newest position seen) and the new
    rows below it, newest first."""
    history = node(request).history
    filters = chosen_filters(request, session)
    after = ascii_int(request.query_params.get("after") or None, "after")  # None: newest
    viewer = history.reader(session.principal, filters.get("tenantId"))
    tail = await history.tail(viewer, _wanted(filters, TAIL_ROWS), after)
    context = {
        "rows": tail.items,
        "skipped": tail.skipped,
        "fresh": True,
        "tail_url": _url("/admin/log/tail", {**filters, "after": str(tail.after)}),
    }
    return render(request, "_log_rows.html", context, session=session)


@router.get("/admin/log/export")
async def export(request: Request, session: AdminPage) -> Response:
    history = node(request).history
    filters = chosen_filters(request, session)
    viewer = history.reader(session.principal, filters.get("tenantId"))
    items = history.export(viewer, _wanted(filters, EXPORT_PAGE))
    disposition = {"Content-Disposition": 'attachment; filename="tidings-log.ndjson"'}
    return ndjson_response(items, headers=disposition)


@router.get("/admin/log/{event_id}")
async def event_page(
    request: Request, session: AdminPage, event_id: str = Path(max_length=128)
) -> Response:
    tidings = node(request)
    tenant = session.tenant_id or request.query_params.get("tenantId") or ""
    if not tenant:
        raise InvalidInput("name the event's tenant (tenantId)", field="tenantId")
    viewer = tidings.history.reader(session.principal, tenant)
    event = await tidings.history.event(viewer, tenant, event_id)
    jobs = await tidings.jobs.list_jobs(
        session.principal,
        JobFilter(event_id=event_id, limit=MAX_JOBS),
        tenant_id=tenant,
        history=True,
    )
    processing = await tidings.jobs.processing(session.principal, event_id, tenant_id=tenant)
    context = {
        "title": f"Event {event_id}",
        "event": event,
        "envelope": orjson.dumps(event, option=orjson.OPT_INDENT_2).decode(),
        "jobs": jobs,
        "rules": await _rule_names(tidings, session, {job.rule_id for job in jobs}),
        "processing": processing,
        "log_url": _url("/admin/log", {"tenantId": tenant}),
        "iso": iso_utc,
    }
    return render(request, "log_event.html", context, session=session)


async def _rule_names(tidings: Tidings, session: AdminSession, ids: set[str]) -> dict[str, str]:
    """Rule id -> name for the rules that made the event's jobs (a rule
    deleted since keeps its id only)."""
    names: dict[str, str] = {}
    for rule_id in sorted(ids):
        try:
            names[rule_id] = (await tidings.rules.get(session.principal, rule_id)).name
        except NotFound:
            names[rule_id] = ""
    return names


def _url(path: str, params: dict[str, str]) -> str:
    return f"{path}?{urlencode(params)}" if params else path


def _refusal(exc: InvalidInput | Forbidden) -> str:
    label = {name: text for name, text, *_ in FILTERS}.get(exc.field or "", exc.field)
    return f"{label}: {exc.detail}" if label else exc.detail
