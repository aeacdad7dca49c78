"""``/admin/catalog``: the event types the session may see, searched as
you type (an htmx fragment from the same search as ``GET /api/catalog?q=``),
a type's page (schemas per version, an example envelope, its recent events
as the session may see them) and tenant types created or versioned from a
form."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from tidings.core.catalog import Catalog, EventType
from tidings.core.examples import example_envelope
from tidings.core.patterns import TypeFilter
from tidings.errors import InvalidInput, NotFound, TidingsError
from tidings.http.catalog import TYPE_NAME
from tidings.http.events import node
from tidings.http.manager.forms import json_field, pretty, tenant_choices, text
from tidings.http.manager.render import redirect, render
from tidings.http.manager.session import AdminPage
from tidings.services.history import History, LogRequest
from tidings.services.sessions import AdminSession

router = APIRouter(include_in_schema=False)
RECENT_EVENTS = 20
MAX_QUERY = 200


def _tenant(request: Request, session: AdminSession) -> str | None:
    return session.tenant_id or request.query_params.get("tenant") or None


async def _visible(request: Request, session: AdminSession) -> tuple[Catalog, str | None]:
    tenant = _tenant(request, session)
    return await node(request).catalog_types.visible(session.principal, tenant)


def _search(catalog: Catalog, query: str) -> list[EventType]:
    return catalog.search(text=query[:MAX_QUERY] or None)


@router.get("/admin/catalog")
async def catalog_page(request: Request, session: AdminPage) -> Response:
    return await _page(request, session)


async def _page(
    request: Request,
    session: AdminSession,
    *,
    form: dict[str, str] | None = None,
    error: TidingsError | None = None,
) -> Response:
    catalog, tenant_id = await _visible(request, session)
    query = request.query_params.get("q", "")
    context = {
        "title": "Catalog",
        "types": _search(catalog, query),
        "total": len(catalog),
        "q": query,
        "tenant": tenant_id,
        "tenants": await tenant_choices(request, session),
        "form": form or {"tenant": tenant_id or ""},
        "error": error,
        "modules": sorted({t.module for t in catalog if t.module}),
    }
    return render(request, "catalog.html", context, session=session, status=422 if error else 200)


@router.get("/admin/catalog/search")
async def catalog_search(request: Request, session: AdminPage) -> Response:
    """The table's rows for ``q`` (the search box's htmx target)."""
    catalog, tenant_id = await _visible(request, session)
    query = request.query_params.get("q", "")
    context = {"types": _search(catalog, query), "q": query, "tenant": tenant_id}
    return render(request, "_catalog_rows.html", context, session=session)


@router.post("/admin/catalog/types")
async def save_tenant_type(request: Request, session: AdminPage) -> Response:
    """Create a tenant type, or add a version when the tenant has it."""
    form = await request.form()
    values = {k: text(form, k, 256 * 1024) for k in ("tenant", "name", "description", "schema")}
    values["tenant"] = session.tenant_id or values["tenant"]
    try:
        tenant_id, name = values["tenant"], values["name"]
        if not tenant_id:
            raise InvalidInput("choose the tenant the type belongs to", field="tenant")
        if not name:
            raise InvalidInput("the type name is required", field="name")
        schema = json_field(form, "schema", label="JSON Schema")
        if not isinstance(schema, dict):
            raise InvalidInput("the JSON Schema must be an object", field="schema")
        await _create_or_version(request, session, tenant_id, name, schema, values)
    except TidingsError as exc:
        return await _page(request, session, form=values, error=exc)
    return redirect(request, f"/admin/catalog/{name}?tenant={tenant_id}")


async def _create_or_version(
    request: Request,
    session: AdminSession,
    tenant_id: str,
    name: str,
    schema: dict[str, Any],
    values: dict[str, str],
) -> None:
    types = node(request).catalog_types
    try:
        await types.get_type(session.principal, tenant_id, name)
    except NotFound:
        spec: dict[str, Any] = {"versions": [{"schema": schema}]}
        if values["description"]:
            spec["description"] = {"en": values["description"]}
        await types.create_type(session.principal, tenant_id, name, spec)
        return
    await types.add_version(session.principal, tenant_id, name, {"schema": schema})


@router.get("/admin/catalog/{event_type}")
async def type_page(
    request: Request, session: AdminPage, event_type: str = Path(pattern=TYPE_NAME)
) -> Response:
    catalog, tenant_id = await _visible(request, session)
    found = catalog.get(event_type)
    detail = found.detail_json()
    versions = [{**v, "pretty": pretty(v["jsonSchema"])} for v in reversed(detail["versions"])]
    example = example_envelope(found, found.latest, tenant_id or found.tenant_id or "acme")
    context = {
        "title": event_type,
        "type": found,
        "versions": versions,
        "example": pretty(example),
        "events": await _recent(request, session, event_type, tenant_id),
        "tenant": tenant_id,
        "tenants": await tenant_choices(request, session),
        "form": {"tenant": found.tenant_id or "", "name": found.name},
    }
    return render(request, "catalog_type.html", context, session=session)


async def _recent(
    request: Request, session: AdminSession, event_type: str, tenant_id: str | None
) -> list[dict[str, Any]]:
    """The type's newest events as the session may see them (redacted)."""
    viewer = History.reader(session.principal, tenant_id)
    page = await node(request).history.page(
        viewer, LogRequest(types=TypeFilter((event_type,)), limit=RECENT_EVENTS)
    )
    return page.items
