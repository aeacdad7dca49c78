"""The event catalog: which event types exist, their versioned payload
schemas, default audiences and sensitive fields.

Pure: the model (:class:`EventType`, :class:`Catalog`) and the questions it
answers. Building types from parsed pack data is
:mod:`tidings.core.catalog_packs`; reading pack files is ``tidings.catalog``'s
job; the pack conventions are checked by :mod:`tidings.core.conventions`.

Pack data (one YAML document per pack)::

    pack: seed-000-qms
    naming: dotted                   # dotted | screaming_snake
    conventions: [transitions, updates]
    defaults: {module: qms, category: QMS, audiences: ["permission:qms.read"]}
    types:
      qms.car.updated:
        title: CAR updated
        entityType: car
        action: UPDATED
        description: {en: "...", ar: "..."}
        audiences: ["permission:qms.read", "user:{data.assigneeId}"]
        sensitive: {"metadata.reporterEmail": "qms.pii.read"}
        versions:
          - fields: "carId?, status?, changes?, updatedFields?"   # seed notation
          - schema: {type: object, properties: {...}}              # or JSON Schema

Version N of type ``ticket.status_changed`` is named by the schema reference
``payload.TicketStatusChanged.vN``; an event names the version it follows
in its ``schema`` field (default: the latest). Every version stays accepted.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Any

from tidings.core.audience import parse_audience
from tidings.core.compat import compare
from tidings.core.envelope import ACTIONS, EventDraft
from tidings.core.validation import PayloadValidator
from tidings.errors import InvalidInput, NotFound, TidingsError

TEMPLATE_RE = re.compile(r"\{([A-Za-z0-9_.]+)\}")
# What a payload value may put into an audience: an id, never a pattern
# (no "*"), never a second segment (no "/").
_TEMPLATE_VALUE_RE = re.compile(r"[A-Za-z0-9_.\-@:]{1,200}")
_SCHEMA_REF_RE = re.compile(r"payload\.([A-Za-z0-9]+)\.v([0-9]+)")
PERMISSIVE_SCHEMA: dict[str, Any] = {"type": "object"}
Location = tuple[str | int, ...]


class CatalogError(TidingsError, ValueError):
    """A pack (or tenant type) that cannot be loaded. ``location`` is the
    path inside the pack data (``("types", "X", "versions", 0, "fields")``),
    which the loader turns into a file and line."""

    status = 422
    code = "catalog_invalid"
    title = "Invalid catalog entry"

    def __init__(self, message: str, *, location: Location = ()) -> None:
        super().__init__(message)
        self.message = message
        self.location = location


def pascal_name(event_type: str) -> str:
    """``TICKET_STATUS_CHANGED`` / ``ticket.status_changed`` -> ``TicketStatusChanged``."""
    return "".join(
        part[:1].upper() + part[1:].lower() for part in re.split(r"[._\-]", event_type) if part
    )


@lru_cache(maxsize=8192)
def schema_ref(event_type: str, version: int) -> str:
    return f"payload.{pascal_name(event_type)}.v{version}"


def last_word(event_type: str) -> str:
    """``TICKET_STATUS_CHANGED`` -> ``changed``; ``qms.car.updated`` -> ``updated``."""
    return re.split(r"[._\-]", event_type.lower())[-1]


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
    title: str = ""
    group: str = ""
    sources: Mapping[int, str] = field(default_factory=dict)  # version -> ``fields`` text
    transition: bool | None = None  # None: decided by the name / action

    @cached_property
    def latest(self) -> int:
        return max(self.versions)

    @cached_property
    def allowed_actions(self) -> frozenset[str]:
        return ACTIONS | ({self.action} if self.action else frozenset())

    def ref(self, version: int | None = None) -> str:
        version = self.latest if version is None else version
        return self._refs.get(version) or schema_ref(self.name, version)

    @cached_property
    def _refs(self) -> dict[int, str]:
        return {v: schema_ref(self.name, v) for v in self.versions}

    @cached_property
    def _validators(self) -> dict[int, PayloadValidator]:
        return {v: PayloadValidator(s) for v, s in self.versions.items()}

    @cached_property
    def _tenant_bound(self) -> dict[int, bool]:
        return {v: "tenantId" in (s.get("required") or ()) for v, s in self.versions.items()}

    @property
    def is_transition(self) -> bool:
        if self.transition is not None:
            return self.transition
        return self.action == "STATUS_CHANGED" or last_word(self.name) == "changed"

    @property
    def is_update(self) -> bool:
        return last_word(self.name) == "updated"

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
        """Raise :class:`InvalidInput` naming the JSON pointer (under
        ``/data``) and the schema rule that failed."""
        validator = self._validators[version]
        if validator.check(data):
            return
        violations = validator.violations(data)
        if not violations:  # pragma: no cover - the two paths agree (property test)
            return
        first = violations[0]
        ref = schema_ref(self.name, version)
        raise InvalidInput(
            f"data does not match {ref}: {first.message}",
            field="/data" + first.pointer,
            rule=first.rule,
            schema=ref,
            schemaPath=first.schema_path,
            violations=[
                {"pointer": "/data" + v.pointer, "rule": v.rule, "detail": v.message}
                for v in violations
            ],
        )

    def check_tenant(self, data: Mapping[str, Any], version: int, tenant_id: str) -> None:
        """A payload that carries ``tenantId`` (seed 002's tenant-scoped
        events) must carry the event's own tenant."""
        if self._tenant_bound.get(version) and "tenantId" in data and data["tenantId"] != tenant_id:
            raise InvalidInput(
                f"data.tenantId must be the event's tenant {tenant_id!r}",
                field="/data/tenantId",
                rule="const",
            )

    def resolve_audiences(self, draft: EventDraft) -> tuple[str, ...]:
        """Fill the catalog's audience templates from the event. A template
        whose value is missing, empty, not a string or number, or not usable
        as an id (``*``, ``/``, spaces...) yields nothing: never a wildcard,
        never an error for a payload its schema accepts."""
        static, dynamic = self._audience_templates
        for parts in dynamic:
            if _fill(parts, draft) is not None:
                break
        else:  # the common case: no template yields anything
            return static
        resolved: dict[str, None] = {}
        for template in self._compiled_audiences:
            if isinstance(template, str):
                resolved[template] = None  # static: validated when the pack loaded
                continue
            value = _fill(template, draft)
            if value is not None:
                resolved[parse_audience(value, field="/audiences")] = None
        return tuple(resolved)

    @cached_property
    def _audience_templates(
        self,
    ) -> tuple[tuple[str, ...], tuple[list[str | tuple[str, ...]], ...]]:
        """The static templates in order (all the audiences of an event
        whose templates yield nothing), and the ones to fill."""
        compiled = self._compiled_audiences
        static = tuple(dict.fromkeys(t for t in compiled if isinstance(t, str)))
        return static, tuple(t for t in compiled if not isinstance(t, str))

    @cached_property
    def _compiled_audiences(self) -> list[str | list[str | tuple[str, ...]]]:
        """Each template as a static string, or as literal parts and paths
        (split once here instead of a regex substitution per publish)."""
        compiled: list[str | list[str | tuple[str, ...]]] = []
        for template in self.audiences:
            if not TEMPLATE_RE.search(template):
                compiled.append(template)
                continue
            parts: list[str | tuple[str, ...]] = []
            for i, piece in enumerate(TEMPLATE_RE.split(template)):
                if i % 2:
                    parts.append(tuple(piece.split(".")))
                elif piece:
                    parts.append(piece)
            compiled.append(parts)
        return compiled

    def matches_text(self, text: str) -> bool:
        needle = text.casefold()
        haystack = [self.name, self.title, self.module, self.category, self.group]
        haystack += list(self.description.values())
        return any(needle in part.casefold() for part in haystack)

    def summary_json(self) -> dict[str, Any]:
        return {
            "type": self.name,
            "title": self.title,
            "module": self.module,
            "category": self.category,
            "group": self.group,
            "description": dict(self.description),
            "entityType": self.entity_type,
            "action": self.action,
            "audiences": list(self.audiences),
            "sensitive": dict(self.sensitive),
            "active": self.active,
            "source": f"tenant:{self.tenant_id}" if self.tenant_id else f"pack:{self.pack}",
            "latestVersion": self.latest,
            "schema": self.ref(),
            "versions": sorted(self.versions),
        }

    def detail_json(self) -> dict[str, Any]:
        versions = []
        for number in sorted(self.versions):
            entry: dict[str, Any] = {
                "version": number,
                "schema": schema_ref(self.name, number),
                "jsonSchema": self.versions[number],
            }
            if number in self.sources:
                entry["fields"] = self.sources[number]
            if number - 1 in self.versions:
                entry["compatibility"] = compare(
                    self.versions[number - 1], self.versions[number]
                ).to_json()
            versions.append(entry)
        return {**self.summary_json(), "versions": versions}


def _lookup(draft: EventDraft, path: tuple[str, ...]) -> object:
    head = path[0]
    value: object
    if head == "data":
        value = draft.data
    elif head == "metadata":
        value = draft.metadata
    elif head == "actor":
        value = draft.actor or {}
    else:
        value = {
            "entityId": draft.entity_id,
            "entityType": draft.entity_type,
            "tenantId": draft.tenant_id,
        }.get(head)
    for part in path[1:]:
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _fill(parts: list[str | tuple[str, ...]], draft: EventDraft) -> str | None:
    """A compiled template filled from the event; None when a value is
    missing or not usable as an id (never a wildcard)."""
    out: list[str] = []
    for part in parts:
        if isinstance(part, str):
            out.append(part)
            continue
        value = _lookup(draft, part)
        if value is None:
            return None
        text = str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
        if not _TEMPLATE_VALUE_RE.fullmatch(text):
            return None
        out.append(text)
    return "".join(out)


class Catalog:
    """An immutable set of event types, looked up by name."""

    def __init__(self, types: Iterable[EventType] = ()) -> None:
        self._types: dict[str, EventType] = {}
        for event_type in types:
            if event_type.name in self._types:
                other = self._types[event_type.name].pack
                raise CatalogError(
                    f"type {event_type.name!r} is defined twice "
                    f"(packs {other!r} and {event_type.pack!r})",
                    location=("types", event_type.name),
                )
            self._types[event_type.name] = event_type

    def __contains__(self, name: object) -> bool:
        return name in self._types

    def __iter__(self) -> Iterator[EventType]:
        return iter(sorted(self._types.values(), key=lambda t: t.name))

    def __len__(self) -> int:
        return len(self._types)

    def get(self, name: str) -> EventType:
        try:
            return self._types[name]
        except KeyError:
            raise NotFound(f"unknown event type {name!r}") from None

    def find(self, name: str) -> EventType | None:
        return self._types.get(name)

    def for_publish(self, name: str) -> EventType:
        event_type = self._types.get(name)
        if event_type is None:
            raise InvalidInput(f"unknown event type {name!r}: not in the catalog", field="/type")
        if not event_type.active:
            raise InvalidInput(f"event type {name!r} is deactivated", field="/type")
        return event_type

    def with_types(self, extra: Iterable[EventType]) -> Catalog:
        """This catalog plus ``extra`` (a tenant's own types); a name that is
        already here is refused (tenant types never shadow shipped ones)."""
        merged = Catalog()
        merged._types = dict(self._types)
        for event_type in extra:
            if event_type.name in merged._types:
                raise CatalogError(
                    f"type {event_type.name!r} already exists (pack "
                    f"{merged._types[event_type.name].pack!r})",
                    location=("types", event_type.name),
                )
            merged._types[event_type.name] = event_type
        return merged

    def search(
        self,
        *,
        module: str | None = None,
        category: str | None = None,
        text: str | None = None,
        active: bool | None = None,
    ) -> list[EventType]:
        return [
            t
            for t in self
            if (module is None or t.module.casefold() == module.casefold())
            and (category is None or t.category.casefold() == category.casefold())
            and (active is None or t.active == active)
            and (not text or t.matches_text(text))
        ]
