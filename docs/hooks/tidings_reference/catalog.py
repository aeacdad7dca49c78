"""The catalog reference, read from the shipped packs by the catalog loader."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tidings.catalog import Pack, load_packs
from tidings.core.catalog import EventType
from tidings_reference.markdown import cell, code, generated_notice, table


def schema_summary(schema: Mapping[str, Any]) -> str:
    """A JSON Schema in short: its properties with their types, required ones marked."""
    properties: Mapping[str, Any] = schema.get("properties") or {}
    if not properties:
        return "any object" if schema.get("type") == "object" else code(schema.get("type"))
    required = set(schema.get("required") or ())
    parts = []
    for name, spec in properties.items():
        kind = spec.get("type") or ("enum" if "enum" in spec else "any") if spec else "any"
        mark = "*" if name in required else ""
        parts.append(f"`{name}{mark}`: {cell(_type_text(kind))}")
    return "; ".join(parts)


def _type_text(kind: Any) -> str:
    return " or ".join(kind) if isinstance(kind, list) else str(kind)


def type_section(event_type: EventType) -> str:
    description = event_type.description.get("en") or next(
        iter(event_type.description.values()), ""
    )
    versions = ", ".join(str(v) for v in sorted(event_type.versions))
    head = f"### `{event_type.name}`\n\n"
    if event_type.title:
        head += f"**{cell(event_type.title)}**. "
    head += f"{cell(description)}\n\n"
    facts = [
        ("versions", versions),
        ("entity type", code(event_type.entity_type)),
        ("action", code(event_type.action)),
        ("audiences", ", ".join(code(a) for a in event_type.audiences)),
        ("sensitive", ", ".join(code(f) for f in event_type.sensitive)),
    ]
    rows = [(name, value) for name, value in facts if value]
    rows += [
        (f"schema v{number}", schema_summary(event_type.versions[number]))
        for number in sorted(event_type.versions)
    ]
    return head + table(("", ""), rows) + "\n"


def pack_section(pack: Pack) -> str:
    rows = [(code(t.name), cell(t.title), code(t.latest)) for t in pack.types]
    text = f"## Pack `{pack.name}`\n\nFile `{pack.path.name}`, {len(pack.types)} types.\n\n"
    text += table(("type", "title", "latest version"), rows) + "\n"
    return text + "".join(type_section(t) for t in pack.types)


def render() -> str:
    packs = load_packs()
    total = sum(len(p.types) for p in packs)
    return (
        "# Catalog\n\n"
        + generated_notice(
            "the shipped packs (`src/tidings/catalog/packs`, read by the catalog loader)"
        )
        + f"\n{len(packs)} packs, {total} event types. The pack format, the field notation and "
        "versioning are in [the catalog guide](../CATALOG.md); a `*` marks a required field.\n\n"
        + "".join(pack_section(p) for p in packs)
    )
