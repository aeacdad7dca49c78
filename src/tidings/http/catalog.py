"""The catalog over HTTP.

Read (any credential; users and tenant-bound keys see their tenant's
catalog, admin and global keys the shipped one or ``?tenantId=``'s):

* ``GET /api/catalog`` — event types, filtered by ``module``, ``category``,
  ``q`` (text in name, title, descriptions) and ``active``;
* ``GET /api/catalog/{type}`` — one type with every schema version and the
  compatibility of each version with the one before;
* ``GET /api/catalog/asyncapi.json`` — an AsyncAPI 3.0 document;
* ``GET /api/catalog/schemas.json`` — the JSON Schema bundle.

Write (admin credential for the tenant): tenant-defined types under
``/api/admin/catalog/{tenantId}/types``, validated like pack entries
(:mod:`tidings.core.catalog`, :mod:`tidings.core.conventions`); a tenant
type can never shadow a shipped one.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from tidings import __version__
from tidings.catalog.tenants import tenant_event_type
from tidings.core.catalog import Catalog, CatalogError
from tidings.core.catalog_packs import TYPE_KEYS
from tidings.core.export import asyncapi_document, schema_bundle
from tidings.errors import InvalidInput
from tidings.http.admin import ID
from tidings.http.events import json_response, node, principal_of, read_json
from tidings.http.models import answers, needs
from tidings.http.models.catalog import (
    AsyncApiDocument,
    CatalogList,
    NewVersion,
    SchemaBundle,
    TenantTypes,
    TypeDetail,
)

router = APIRouter(tags=["catalog"])
TYPE_NAME = r"^[A-Za-z][A-Za-z0-9_.\-]{0,127}$"
MAX_SPEC_BYTES = 256 * 1024
PATCHABLE = TYPE_KEYS - {"versions"}

_ENTRY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "example": "acme.widget.created"},
        "title": {"type": "string"},
        "module": {"type": "string"},
        "category": {"type": "string"},
        "group": {"type": "string"},
        "description": {
            "oneOf": [
                {"type": "string"},
                {"type": "object", "additionalProperties": {"type": "string"}},
            ]
        },
        "entityType": {"type": "string"},
        "action": {"type": "string", "example": "CREATED"},
        "audiences": {"type": "array", "items": {"type": "string"}},
        "sensitive": {"type": "object", "additionalProperties": {"type": "string"}},
        "active": {"type": "boolean"},
        "transition": {"type": "boolean"},
        "fields": {"type": "string", "example": "tenantId, widgetId, createdAt, note?"},
        "schema": {"type": "object"},
        "versions": {"type": "array", "items": {"type": "object"}},
    },
}


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


# -- reading --------------------------------------------------------------


async def _catalog_for(request: Request) -> tuple[Catalog, str | None]:
    """The catalog the caller sees, and its tenant (None: shipped only)."""
    requested = request.query_params.get("tenantId") or None
    return await node(request).catalog_types.visible(await principal_of(request), requested)


def _flag(value: str | None, name: str) -> bool | None:
    if value is None:
        return None
    if value not in ("true", "false"):
        raise InvalidInput(f"{name} must be true or false", field=name)
    return value == "true"


@router.get(
    "/api/catalog",
    summary="Event types (filter by module, category, text)",
    responses=answers(CatalogList),
    openapi_extra=needs("catalog.read"),
)
async def list_catalog(request: Request) -> Response:
    catalog, tenant_id = await _catalog_for(request)
    params = request.query_params
    found = catalog.search(
        module=params.get("module") or None,
        category=params.get("category") or None,
        text=params.get("q") or None,
        active=_flag(params.get("active"), "active"),
    )
    return json_response(
        {
            "tenantId": tenant_id,
            "count": len(found),
            "items": [t.summary_json() for t in found],
        }
    )


def _origin(request: Request) -> tuple[str, str]:
    return request.url.netloc or "localhost", request.url.scheme or "http"


@router.get(
    "/api/catalog/asyncapi.json",
    summary="The catalog as an AsyncAPI 3.0 document",
    responses=answers(AsyncApiDocument),
    openapi_extra=needs("catalog.read"),
)
async def asyncapi(request: Request) -> Response:
    catalog, tenant_id = await _catalog_for(request)
    host, protocol = _origin(request)
    scope = f"tenant {tenant_id}" if tenant_id else "shipped packs"
    document = asyncapi_document(
        catalog,
        title=f"Tidings events ({scope})",
        version=__version__,
        description=f"Every event type in the Tidings catalog of {scope}.",
        host=host,
        protocol=protocol,
    )
    return json_response(document)


@router.get(
    "/api/catalog/schemas.json",
    summary="Every payload schema as one JSON Schema bundle",
    responses=answers(SchemaBundle),
    openapi_extra=needs("catalog.read"),
)
async def schemas(request: Request) -> Response:
    catalog, tenant_id = await _catalog_for(request)
    return json_response(schema_bundle(catalog, catalog_id=tenant_id or "shipped"))


@router.get(
    "/api/catalog/{event_type}",
    summary="One event type with all its schema versions",
    responses=answers(TypeDetail),
    openapi_extra=needs("catalog.read"),
)
async def get_type(request: Request, event_type: str = Path(pattern=TYPE_NAME)) -> Response:
    catalog, _tenant = await _catalog_for(request)
    return json_response(catalog.get(event_type).detail_json())


# -- tenant-defined types ---------------------------------------------------


def _entry_from(body: Any) -> tuple[str, dict[str, Any]]:
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object", field="")
    name = body.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidInput("name is required", field="/name")
    spec = {k: v for k, v in body.items() if k != "name"}
    shorthand = {k: spec.pop(k) for k in ("fields", "schema") if k in spec}
    if shorthand:
        if "versions" in spec:
            raise InvalidInput("give fields/schema or versions, not both", field="/versions")
        spec["versions"] = [shorthand]
    return name, spec


@router.get(
    "/api/admin/catalog/{tenant_id}/types",
    summary="A tenant's own event types",
    responses=answers(TenantTypes),
    openapi_extra=needs("catalog.write"),
)
async def list_tenant_types(request: Request, tenant_id: str = Path(pattern=ID)) -> Response:
    records = await node(request).catalog_types.list_types(await principal_of(request), tenant_id)
    items = []
    for record in records:
        try:
            items.append(tenant_event_type(record).detail_json())
        except CatalogError as exc:
            items.append({"type": record.name, "error": exc.message})
    return json_response({"tenantId": tenant_id, "items": items})


@router.post(
    "/api/admin/catalog/{tenant_id}/types",
    status_code=201,
    summary="Add a tenant event type (first version from fields or schema)",
    openapi_extra={**_body(_ENTRY_SCHEMA), **needs("catalog.write")},
    responses=answers(TypeDetail, 201),
)
async def create_tenant_type(request: Request, tenant_id: str = Path(pattern=ID)) -> Response:
    principal = await principal_of(request)
    body, _ = await read_json(request, MAX_SPEC_BYTES)
    name, spec = _entry_from(body)
    event_type = await node(request).catalog_types.create_type(principal, tenant_id, name, spec)
    return json_response(event_type.detail_json(), 201)


@router.get(
    "/api/admin/catalog/{tenant_id}/types/{event_type}",
    summary="One tenant event type",
    responses=answers(TypeDetail),
    openapi_extra=needs("catalog.write"),
)
async def get_tenant_type(
    request: Request,
    tenant_id: str = Path(pattern=ID),
    event_type: str = Path(pattern=TYPE_NAME),
) -> Response:
    principal = await principal_of(request)
    record = await node(request).catalog_types.get_type(principal, tenant_id, event_type)
    return json_response(tenant_event_type(record).detail_json())


@router.patch(
    "/api/admin/catalog/{tenant_id}/types/{event_type}",
    summary="Change a tenant type's description, audiences, sensitive fields or active flag",
    openapi_extra={**_body(_ENTRY_SCHEMA), **needs("catalog.write")},
    responses=answers(TypeDetail),
)
async def patch_tenant_type(
    request: Request,
    tenant_id: str = Path(pattern=ID),
    event_type: str = Path(pattern=TYPE_NAME),
) -> Response:
    principal = await principal_of(request)
    body, _ = await read_json(request, MAX_SPEC_BYTES)
    if not isinstance(body, dict) or not body:
        raise InvalidInput("the body is an object of the keys to change", field="")
    unknown = sorted(set(body) - PATCHABLE)
    if unknown:
        hint = (
            " (add a version with POST .../versions)"
            if unknown[0] in ("versions", "fields", "schema")
            else ""
        )
        raise InvalidInput(f"{unknown[0]!r} cannot be changed here{hint}", field=f"/{unknown[0]}")
    built = await node(request).catalog_types.change_type(principal, tenant_id, event_type, body)
    return json_response(built.detail_json())


@router.post(
    "/api/admin/catalog/{tenant_id}/types/{event_type}/versions",
    status_code=201,
    summary="Add a schema version (older versions stay accepted)",
    openapi_extra={
        **_body(
            {
                "type": "object",
                "properties": {
                    "fields": {"type": "string"},
                    "schema": {"type": "object"},
                    "note": {"type": "string"},
                },
            }
        ),
        **needs("catalog.write"),
    },
    responses=answers(NewVersion, 201),
)
async def add_version(
    request: Request,
    tenant_id: str = Path(pattern=ID),
    event_type: str = Path(pattern=TYPE_NAME),
) -> Response:
    """``?requireCompatible=true`` refuses (409) a version that is not
    backward compatible with the latest one."""
    principal = await principal_of(request)
    body, _ = await read_json(request, MAX_SPEC_BYTES)
    if not isinstance(body, dict):
        raise InvalidInput("the body is a version: {fields} or {schema}", field="")
    strict = _flag(request.query_params.get("requireCompatible"), "requireCompatible")
    added = await node(request).catalog_types.add_version(
        principal, tenant_id, event_type, body, require_compatible=bool(strict)
    )
    built, number = added.event_type, added.number
    return json_response(
        {
            "type": event_type,
            "version": number,
            "schema": built.ref(number),
            "compatibility": added.compatibility.to_json(),
            "eventType": built.detail_json(),
        },
        201,
    )
