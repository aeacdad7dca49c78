"""The event catalog: which event types exist, their versioned payload
schemas, default audiences and sensitive fields.

Pure: builds :class:`EventType` objects from already-parsed pack data and
answers questions about them. Reading pack files is ``tidings.catalog``'s job;
the pack conventions are checked by :mod:`tidings.core.conventions`.

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

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from tidings.core.audience import parse_audience
from tidings.core.compat import compare
from tidings.core.envelope import ACTIONS, EventDraft
from tidings.core.fields import FieldsError, fields_schema
from tidings.core.validation import PayloadValidator, pattern_problem
from tidings.errors import InvalidInput, NotFound, TidingsError

_TEMPLATE_RE = re.compile(r"\{([A-Za-z0-9_.]+)\}")
# What a payload value may put into an audience: an id, never a pattern
# (no "*"), never a second segment (no "/").
_TEMPLATE_VALUE_RE = re.compile(r"[A-Za-z0-9_.\-@:]{1,200}")
_SCHEMA_REF_RE = re.compile(r"payload\.([A-Za-z0-9]+)\.v([0-9]+)")
PERMISSIVE_SCHEMA: dict[str, Any] = {"type": "object"}
TYPE_KEYS = frozenset(
    {
        "module",
        "category",
        "group",
        "title",
        "description",
        "entityType",
        "action",
        "audiences",
        "sensitive",
        "active",
        "transition",
        "versions",
    }
)
VERSION_KEYS = frozenset({"fields", "schema", "ref", "note"})
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

    @cached_property
    def sensitive_permissions(self) -> frozenset[str]:
        return frozenset(self.sensitive.values())

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
            if not _TEMPLATE_RE.search(template):
                compiled.append(template)
                continue
            parts: list[str | tuple[str, ...]] = []
            for i, piece in enumerate(_TEMPLATE_RE.split(template)):
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


def _version_schema(
    version: object, number: int, where: Location
) -> tuple[Mapping[str, Any], str | None]:
    at = (*where, "versions", number - 1)
    if not isinstance(version, dict):
        raise CatalogError(f"version {number} must be a mapping with fields or schema", location=at)
    unknown = sorted(set(version) - VERSION_KEYS)
    if unknown:
        raise CatalogError(
            f"version {number}: unknown key {unknown[0]!r}", location=(*at, unknown[0])
        )
    if ("fields" in version) == ("schema" in version):
        raise CatalogError(f"version {number} needs exactly one of fields or schema", location=at)
    if "fields" in version:
        text = version["fields"]
        if not isinstance(text, str):
            raise CatalogError(
                f"version {number}: fields must be a string", location=(*at, "fields")
            )
        try:
            return fields_schema(text), text
        except FieldsError as exc:
            raise CatalogError(
                f"version {number}: fields: {exc}", location=(*at, "fields")
            ) from None
    schema = version["schema"]
    if not isinstance(schema, dict):
        raise CatalogError(f"version {number}: schema must be an object", location=(*at, "schema"))
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise CatalogError(
            f"version {number}: schema is invalid: {exc.message}", location=(*at, "schema")
        ) from None
    if schema.get("type", "object") != "object":
        raise CatalogError(
            f"version {number}: a payload schema must describe an object", location=(*at, "schema")
        )
    slow = pattern_problem(schema)
    if slow is not None:
        where, message = slow
        raise CatalogError(f"version {number}: {message}", location=(*at, "schema", *where))
    problem = _reference_problem(schema)
    if problem is not None:
        raise CatalogError(f"version {number}: {problem}", location=(*at, "schema"))
    return schema, None


def _is_index(part: str) -> bool:
    return part.isascii() and part.isdigit()  # int() also takes "²"


def _reference_problem(schema: Mapping[str, Any]) -> str | None:
    """Schemas are self-contained: a ``$ref`` points inside the schema (and
    resolves there); nothing is ever fetched."""

    def resolves(pointer: str) -> bool:
        node: Any = schema
        for raw in pointer.lstrip("/").split("/") if pointer.strip("/") else ():
            part = raw.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif (
                isinstance(node, list)
                and part.isascii()
                and part.isdigit()
                and int(part) < len(node)
            ):
                node = node[int(part)]
            else:
                return False
        return True

    stack: list[Any] = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key in ("$dynamicRef", "$recursiveRef"):
                if key in node:
                    return f"{key} is not supported"
            ref = node.get("$ref")
            if isinstance(ref, str) and not (ref.startswith("#") and resolves(ref[1:])):
                return f"$ref {ref!r} must point inside the schema (#/...)"
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return None


def build_event_type(
    name: str,
    spec: Mapping[str, Any],
    *,
    pack: str,
    defaults: Mapping[str, Any],
    tenant_id: str | None = None,
) -> EventType:
    where: Location = ("types", name)

    def fail(message: str, *key: str | int) -> CatalogError:
        return CatalogError(f"type {name!r}: {message}", location=(*where, *key))

    if not isinstance(spec, Mapping):
        raise fail("an entry must be a mapping")
    unknown = sorted(set(spec) - TYPE_KEYS)
    if unknown:
        raise fail(
            f"unknown key {unknown[0]!r} (known: {', '.join(sorted(TYPE_KEYS))})", unknown[0]
        )
    merged = {**defaults, **spec}
    versions_spec = merged.get("versions") or [{"schema": PERMISSIVE_SCHEMA}]
    if not isinstance(versions_spec, list):
        raise fail("versions must be a list", "versions")
    versions: dict[int, Mapping[str, Any]] = {}
    sources: dict[int, str] = {}
    for number, version in enumerate(versions_spec, start=1):
        try:
            schema, text = _version_schema(version, number, where)
        except CatalogError as exc:
            raise CatalogError(f"type {name!r}: {exc.message}", location=exc.location) from None
        ref = version.get("ref") if isinstance(version, dict) else None
        if ref is not None and ref != schema_ref(name, number):
            raise fail(
                f"version {number}: ref must be {schema_ref(name, number)!r}, not {ref!r}",
                "versions",
                number - 1,
                "ref",
            )
        versions[number] = schema
        if text is not None:
            sources[number] = text
    action = merged.get("action")
    if action is not None and (
        not isinstance(action, str) or not re.fullmatch(r"[A-Z][A-Z0-9_]{0,63}", action)
    ):
        raise fail("action must be an upper-case word", "action")
    audiences = merged.get("audiences") or ()
    if not isinstance(audiences, (list, tuple)):
        raise fail("audiences must be a list", "audiences")
    for i, template in enumerate(audiences):
        probe = _TEMPLATE_RE.sub("x", template) if isinstance(template, str) else template
        try:
            parse_audience(probe)
        except InvalidInput as exc:
            raise fail(exc.detail, "audiences", i) from None
    sensitive = merged.get("sensitive") or {}
    if not isinstance(sensitive, dict) or not all(
        isinstance(k, str)
        and k.startswith(("data.", "metadata.", "actor."))
        and isinstance(v, str)
        and v
        for k, v in sensitive.items()
    ):
        raise fail("sensitive maps data./metadata./actor. paths to permissions", "sensitive")
    for path, permission in sensitive.items():
        try:
            parse_audience(f"permission:{permission}")
        except InvalidInput:
            raise fail(f"{permission!r} is not a permission key", "sensitive", path) from None
    for key in ("module", "category", "group", "title", "entityType"):
        value = merged.get(key)
        if value is not None and (not isinstance(value, str) or len(value) > 200):
            raise fail(f"{key} must be a string of at most 200 characters", key)
    description = merged.get("description") or {}
    if isinstance(description, str):
        description = {"en": description}
    if not isinstance(description, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in description.items()
    ):
        raise fail("description is a string or a mapping of language to text", "description")
    transition = merged.get("transition")
    if transition is not None and not isinstance(transition, bool):
        raise fail("transition must be true or false", "transition")
    active = merged.get("active", True)
    if not isinstance(active, bool):
        raise fail("active must be true or false", "active")
    return EventType(
        name=name,
        versions=versions,
        module=str(merged.get("module", "")),
        category=str(merged.get("category", "")),
        description=dict(description),
        entity_type=merged.get("entityType"),
        action=action,
        audiences=tuple(audiences),
        sensitive=dict(sensitive),
        active=active,
        pack=pack,
        tenant_id=tenant_id,
        title=str(merged.get("title", "")),
        group=str(merged.get("group", "")),
        sources=sources,
        transition=transition,
    )


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


PACK_KEYS = frozenset(
    {"pack", "naming", "conventions", "defaults", "types", "source", "description"}
)


def pack_types(pack: Mapping[str, Any]) -> list[EventType]:
    """The event types of one pack's data (without the convention checks)."""
    name = str(pack.get("pack", "?"))
    unknown = sorted(set(pack) - PACK_KEYS)
    if unknown:
        raise CatalogError(
            f"pack {name!r}: unknown key {unknown[0]!r} (known: {', '.join(sorted(PACK_KEYS))})",
            location=(unknown[0],),
        )
    defaults = pack.get("defaults") or {}
    if not isinstance(defaults, dict) or not set(defaults) <= TYPE_KEYS - {"versions"}:
        raise CatalogError(
            f"pack {name!r}: defaults may only set {', '.join(sorted(TYPE_KEYS - {'versions'}))}",
            location=("defaults",),
        )
    entries = pack.get("types") or {}
    if not isinstance(entries, dict):
        raise CatalogError(
            f"pack {name!r}: types must be a mapping of type name to entry", location=("types",)
        )
    return [
        build_event_type(str(type_name), spec or {}, pack=name, defaults=defaults)
        for type_name, spec in entries.items()
    ]


def catalog_from_packs(packs: Iterable[Mapping[str, Any]]) -> Catalog:
    types: list[EventType] = []
    for pack in packs:
        types += pack_types(pack)
    return Catalog(types)
