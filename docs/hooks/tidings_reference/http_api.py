"""The HTTP API reference, rendered from the OpenAPI document the app builds."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from tidings_reference.markdown import cell, code, compact_json, generated_notice, prose, table

METHODS = ("get", "put", "post", "patch", "delete", "head", "options")
REF_PREFIX = "#/components/schemas/"


def anchor(name: str) -> str:
    return "schema-" + re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def schema_link(ref: str) -> str:
    name = ref.removeprefix(REF_PREFIX)
    return f"[{name}](#{anchor(name)})"


def type_of(schema: Mapping[str, Any] | None) -> str:
    """A schema in a few words, references as links to their section."""
    if not schema:
        return "any"
    if "$ref" in schema:
        return schema_link(schema["$ref"])
    for key in ("oneOf", "anyOf"):
        if key in schema:
            return " or ".join(type_of(s) for s in schema[key])
    if "allOf" in schema:
        return " and ".join(type_of(s) for s in schema["allOf"])
    if "const" in schema:
        return code(compact_json(schema["const"]))
    if "enum" in schema:
        return "one of " + ", ".join(code(compact_json(v)) for v in schema["enum"])
    kind = schema.get("type", "any")
    if isinstance(kind, list):
        return " or ".join(kind)
    if kind == "array":
        return "array of " + type_of(schema.get("items"))
    if kind == "object" and isinstance(schema.get("additionalProperties"), Mapping):
        return "map of " + type_of(schema["additionalProperties"])
    if "contentSchema" in schema:
        media = cell(schema.get("contentMediaType", ""))
        return f"{kind} ({media}: {type_of(schema['contentSchema'])})"
    fmt = schema.get("format") or schema.get("pattern")
    return f"{kind} ({code(fmt)})" if fmt else str(kind)


def property_rows(schema: Mapping[str, Any]) -> list[tuple[str, ...]]:
    required = set(schema.get("required") or ())
    return [
        (
            code(name),
            type_of(spec),
            "yes" if name in required else "",
            cell(spec.get("description")),
        )
        for name, spec in (schema.get("properties") or {}).items()
    ]


def body_text(schema: Mapping[str, Any]) -> str:
    """A body schema: a link for a named one, its properties for an inline one."""
    if "$ref" in schema or not schema.get("properties"):
        return f" {type_of(schema)}\n\n"
    text = "\n\n" + (cell(schema["description"]) + "\n\n" if schema.get("description") else "")
    return text + table(("field", "type", "required", "description"), property_rows(schema)) + "\n"


def operations(document: Mapping[str, Any]) -> Iterator[tuple[str, str, Mapping[str, Any]]]:
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item:
                yield method, path, item[method]


def credentials(operation: Mapping[str, Any]) -> str:
    if "security" not in operation:
        return "none"
    choices = []
    for requirement in operation["security"]:
        parts = [
            f"`{name}`" + (f" ({', '.join(roles)})" if roles else "")
            for name, roles in requirement.items()
        ]
        choices.append(" and ".join(parts) or "none")
    return " or ".join(choices) or "none"


def operation_section(method: str, path: str, operation: Mapping[str, Any]) -> str:
    text = f"### `{method.upper()} {path}`\n\n"
    if operation.get("summary"):
        text += f"**{cell(operation['summary'])}**\n\n"
    if operation.get("description"):
        text += prose(operation["description"].strip()) + "\n\n"
    text += f"Credentials: {credentials(operation)}"
    if operation.get("x-access"):
        text += "; operation " + ", ".join(code(a) for a in operation["x-access"])
    text += ".\n\n"
    parameters = operation.get("parameters") or []
    if parameters:
        rows = [
            (
                code(p["name"]),
                p["in"],
                "yes" if p.get("required") else "",
                type_of(p.get("schema")),
                cell(p.get("description")),
            )
            for p in parameters
        ]
        text += "Parameters:\n\n" + table(("name", "in", "required", "type", "description"), rows)
        text += "\n"
    body = operation.get("requestBody")
    if body:
        for media, content in (body.get("content") or {}).items():
            text += f"Request body (`{media}`):{body_text(content.get('schema') or {})}"
    responses: list[tuple[str, ...]] = []
    for status, answer in operation.get("responses", {}).items():
        content = answer.get("content") or {}
        media = ", ".join(f"`{m}` {type_of(c.get('schema'))}" for m, c in content.items())
        responses.append((code(status), cell(answer.get("description")), media))
    text += "Responses:\n\n" + table(("status", "meaning", "body"), responses)
    return text + "\n"


def schema_section(name: str, schema: Mapping[str, Any]) -> str:
    text = f"### {name} {{#{anchor(name)}}}\n\n"
    if schema.get("description"):
        text += cell(schema["description"]) + "\n\n"
    rows = property_rows(schema)
    if rows:
        text += table(("field", "type", "required", "description"), rows)
    else:
        text += f"Type: {type_of({k: v for k, v in schema.items() if k != 'description'})}\n"
    return text + "\n"


def security_section(document: Mapping[str, Any]) -> str:
    schemes = document.get("components", {}).get("securitySchemes", {})
    rows = [
        (code(name), cell(s.get("scheme") or s.get("type")), cell(s.get("description")))
        for name, s in schemes.items()
    ]
    return "## Credentials\n\n" + table(("name", "scheme", "what"), rows) + "\n"


def render(document: Mapping[str, Any]) -> str:
    by_tag: dict[str, list[str]] = {}
    for method, path, operation in operations(document):
        tag = (operation.get("tags") or ["other"])[0]
        by_tag.setdefault(tag, []).append(operation_section(method, path, operation))
    info = document["info"]
    text = (
        "# HTTP API\n\n"
        + generated_notice("the OpenAPI document the app serves at `/openapi.json`")
        + f"\n{cell(info.get('description'))} OpenAPI {document['openapi']}, API version "
        f"{info['version']}. Every error is an RFC 9457 problem document "
        f"({schema_link(REF_PREFIX + 'Problem')}) whose `field` names the bad input.\n\n"
        + security_section(document)
    )
    for tag, sections in by_tag.items():
        text += f"## {tag.capitalize()}\n\n" + "".join(sections)
    schemas = document.get("components", {}).get("schemas", {})
    text += "## Schemas\n\n" + "".join(schema_section(n, s) for n, s in sorted(schemas.items()))
    return text


def document_of_a_hub(database_url: str) -> dict[str, Any]:
    """The OpenAPI document of a hub built (not started) on ``database_url``."""
    from tidings.config import Settings
    from tidings.http.app import create_app

    document: dict[str, Any] = create_app(Settings(database_url=database_url)).api.openapi()
    return document
