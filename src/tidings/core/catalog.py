"""The event catalog: which event types exist, their versioned payload
schemas, default audiences and sensitive fields.

Pure: builds :class:`EventType` objects from already-parsed pack data and
answers questions about them. Reading pack files is ``tidings.catalog``'s job.

Pack data (one YAML document per pack)::

    pack: qms
    naming: dotted                   # dotted | screaming_snake
    defaults: {module: qms, category: QMS, audiences: ["permission:qms.read"]}
    types:
      qms.car.updated:
        entityType: car
        action: UPDATED
        description: {en: "...", ar: "..."}
        audiences: ["permission:qms.read", "user:{data.assigneeId}"]
        sensitive: {"metadata.reporterEmail": "qms.pii.read"}
        versions:
          - schema: {type: object, properties: {...}}
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from tidings.core.audience import parse_audience
from tidings.core.envelope import ACTIONS, EventDraft
from tidings.errors import InvalidInput, NotFound

_TEMPLATE_RE = re.compile(r"\{([A-Za-z0-9_.]+)\}")
_SCHEMA_REF_RE = re.compile(r"^payload\.([A-Za-z0-9]+)\.v([0-9]+)$")
PERMISSIVE_SCHEMA: dict[str, Any] = {"type": "object"}


class CatalogError(ValueError):
    """A pack that cannot be loaded; the message names the pack and type."""


def pascal_name(event_type: str) -> str:
    """``TICKET_STATUS_CHANGED`` / ``ticket.status_changed`` -> ``TicketStatusChanged``."""
    return "".join(
        part[:1].upper() + part[1:].lower() for part in re.split(r"[._\-]", event_type) if part
    )


def schema_ref(event_type: str, version: int) -> str:
    return f"payload.{pascal_name(event_type)}.v{version}"


@dataclass(frozen=True)
class EventType:
    name: str
    versions: Mapping[int, Mapping[str, Any]]
    module: str = ""
    category: str = ""
    description: Mapping[str, str] = field(default_factory=dict)
    entity_type: str | None = None
    action: str | None = None
    audiences: tuple[str, ...] = ()
    sensitive: Mapping[str, str] = field(default_factory=dict)
    active: bool = True
    pack: str = ""
    tenant_id: str | None = None  # None: shipped/global type

    @property
    def latest(self) -> int:
        return max(self.versions)

    @cached_property
    def _validators(self) -> dict[int, Draft202012Validator]:
        return {v: Draft202012Validator(s) for v, s in self.versions.items()}

    @cached_property
    def sensitive_permissions(self) -> frozenset[str]:
        return frozenset(self.sensitive.values())

    def version_of(self, schema: str | None) -> int:
        if schema is None:
            return self.latest
        match = _SCHEMA_REF_RE.fullmatch(schema)
        if not match or match.group(1) != pascal_name(self.name):
            raise InvalidInput(
                f"schema must be {schema_ref(self.name, self.latest)!r} or an older version",
                field="/schema",
            )
        version = int(match.group(2))
        if version not in self.versions:
            raise InvalidInput(f"unknown schema version {schema!r}", field="/schema")
        return version

    def validate_data(self, data: Mapping[str, Any], version: int) -> None:
        error = next(iter(self._validators[version].iter_errors(data)), None)
        if error is None:
            return
        pointer = "/data" + "".join(f"/{p}" for p in error.absolute_path)
        raise InvalidInput(
            f"data does not match {schema_ref(self.name, version)}: {error.message}",
            field=pointer,
            rule=str(error.validator),
        )

    def resolve_audiences(self, draft: EventDraft) -> tuple[str, ...]:
        """Fill the catalog's audience templates from the event. A template
        whose value is missing yields nothing (never a wildcard)."""
        resolved: dict[str, None] = {}
        for template in self.audiences:
            value = _fill_template(template, draft)
            if value is not None:
                resolved[parse_audience(value, field="/audiences")] = None
        return tuple(resolved)


def _lookup(draft: EventDraft, path: str) -> object:
    head, _, rest = path.partition(".")
    roots: dict[str, object] = {
        "data": draft.data,
        "metadata": draft.metadata,
        "actor": draft.actor or {},
        "entityId": draft.entity_id,
        "entityType": draft.entity_type,
        "tenantId": draft.tenant_id,
    }
    value: object = roots.get(head)
    for part in rest.split(".") if rest else ():
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _fill_template(template: str, draft: EventDraft) -> str | None:
    missing = False

    def substitute(match: re.Match[str]) -> str:
        nonlocal missing
        value = _lookup(draft, match.group(1))
        if value is None or isinstance(value, (dict, list)) or value == "":
            missing = True
            return ""
        return str(value)

    filled = _TEMPLATE_RE.sub(substitute, template)
    return None if missing else filled


def build_event_type(
    name: str, spec: Mapping[str, Any], *, pack: str, defaults: Mapping[str, Any]
) -> EventType:
    merged = {**defaults, **spec}
    where = f"pack {pack!r}, type {name!r}"
    versions_spec = merged.get("versions") or [{"schema": PERMISSIVE_SCHEMA}]
    if not isinstance(versions_spec, list):
        raise CatalogError(f"{where}: versions must be a list")
    versions: dict[int, Mapping[str, Any]] = {}
    for number, version in enumerate(versions_spec, start=1):
        schema = version.get("schema", PERMISSIVE_SCHEMA) if isinstance(version, dict) else None
        if not isinstance(schema, dict):
            raise CatalogError(f"{where}: version {number} needs a schema object")
        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as exc:
            raise CatalogError(
                f"{where}: version {number} schema is invalid: {exc.message}"
            ) from None
        versions[number] = schema
    action = merged.get("action")
    if action is not None and (not isinstance(action, str) or not action.isupper()):
        raise CatalogError(f"{where}: action must be an upper-case word")
    audiences = tuple(merged.get("audiences") or ())
    for template in audiences:
        probe = _TEMPLATE_RE.sub("x", template)
        try:
            parse_audience(probe)
        except InvalidInput as exc:
            raise CatalogError(f"{where}: {exc.detail}") from None
    sensitive = merged.get("sensitive") or {}
    if not isinstance(sensitive, dict) or not all(
        isinstance(k, str) and k.startswith(("data.", "metadata.", "actor.")) and isinstance(v, str)
        for k, v in sensitive.items()
    ):
        raise CatalogError(f"{where}: sensitive maps data./metadata./actor. paths to permissions")
    description = merged.get("description") or {}
    if isinstance(description, str):
        description = {"en": description}
    return EventType(
        name=name,
        versions=versions,
        module=str(merged.get("module", "")),
        category=str(merged.get("category", "")),
        description=dict(description),
        entity_type=merged.get("entityType"),
        action=action,
        audiences=audiences,
        sensitive=dict(sensitive),
        active=bool(merged.get("active", True)),
        pack=pack,
    )


class Catalog:
    """An immutable set of event types, looked up by name."""

    def __init__(self, types: Iterable[EventType] = ()) -> None:
        self._types: dict[str, EventType] = {}
        for event_type in types:
            if event_type.name in self._types:
                other = self._types[event_type.name].pack
                raise CatalogError(
                    f"type {event_type.name!r} is defined twice (packs {other!r} and {event_type.pack!r})"
                )
            self._types[event_type.name] = event_type

    def __contains__(self, name: object) -> bool:
        return name in self._types

    def __iter__(self) -> Any:
        return iter(sorted(self._types.values(), key=lambda t: t.name))

    def __len__(self) -> int:
        return len(self._types)

    def get(self, name: str) -> EventType:
        try:
            return self._types[name]
        except KeyError:
            raise NotFound(f"unknown event type {name!r}") from None

    def for_publish(self, name: str) -> EventType:
        event_type = self._types.get(name)
        if event_type is None:
            raise InvalidInput(f"unknown event type {name!r}: not in the catalog", field="/type")
        if not event_type.active:
            raise InvalidInput(f"event type {name!r} is deactivated", field="/type")
        return event_type

    def allowed_actions(self, event_type: EventType) -> frozenset[str]:
        return ACTIONS | ({event_type.action} if event_type.action else frozenset())


def catalog_from_packs(packs: Iterable[Mapping[str, Any]]) -> Catalog:
    types: list[EventType] = []
    for pack in packs:
        name = str(pack.get("pack", "?"))
        defaults = pack.get("defaults") or {}
        entries = pack.get("types") or {}
        if not isinstance(entries, dict):
            raise CatalogError(f"pack {name!r}: types must be a mapping of type name to entry")
        for type_name, spec in entries.items():
            types.append(build_event_type(str(type_name), spec or {}, pack=name, defaults=defaults))
    return Catalog(types)
