"""The catalog's house rules, checked by ``tidings catalog validate``, at
start-up and for tenant-defined types.

Always:

* **one naming style per pack**: ``naming: dotted`` (``qms.car.updated``:
  lower-case words joined by dots, ``_`` inside a word) or
  ``naming: screaming_snake`` (``TICKET_STATUS_CHANGED``);
* **schema references** ``payload.<PascalEventName>.v<N>``: derived from
  the name, so a version may only restate its own (``ref:``);
* **every type declares its versions** (no implicit permissive schema);
* **no duplicate types** across packs (:class:`~tidings.core.catalog.Catalog`).

When the pack lists them under ``conventions:`` (seed 002's rules):

* ``tenant-id``: ``tenantId`` is a required payload field of every version;
* ``transitions``: a transition event (action ``STATUS_CHANGED``, or a name
  ending in *changed*, unless ``transition: false``) carries at least one
  ``previousX``/``newX`` pair, and every ``previousX`` its ``newX``;
* ``updates``: an *updated* event carries ``changes`` or ``updatedFields``
  (or ``previousX``/``newX`` pairs saying what changed).

Findings are :class:`~tidings.core.catalog.CatalogError` with a location in
the pack data, so the loader can name the file and line. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from tidings.core.catalog import CatalogError, EventType, pascal_name

NAMING = {
    "dotted": re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+"),
    "screaming_snake": re.compile(r"[A-Z][A-Z0-9]*(_[A-Z0-9]+)*"),
}
CONVENTIONS = frozenset({"tenant-id", "transitions", "updates"})
RESERVED_NAMES = frozenset({"asyncapi.json", "schemas.json"})
MAX_NAME = 128  # the envelope's limit


def naming_of(name: str) -> str | None:
    for style, pattern in NAMING.items():
        if pattern.fullmatch(name):
            return style
    return None


def _properties(schema: Mapping[str, Any]) -> set[str]:
    props = schema.get("properties")
    return set(props) if isinstance(props, dict) else set()


def transition_pairs(properties: Iterable[str]) -> tuple[set[str], set[str], set[str]]:
    """(paired X, previousX without newX, newX without previousX)."""
    names = set(properties)
    previous = {n[len("previous") :] for n in names if re.fullmatch(r"previous[A-Z]\w*", n)}
    new = {n[len("new") :] for n in names if re.fullmatch(r"new[A-Z]\w*", n)}
    return previous & new, previous - new, new - previous


def check_type(
    event_type: EventType, *, naming: str | None, conventions: Iterable[str] = ()
) -> None:
    """Raise the first convention ``event_type`` breaks."""
    name = event_type.name

    def fail(message: str, *key: str | int) -> CatalogError:
        return CatalogError(f"type {name!r}: {message}", location=("types", name, *key))

    if len(name) > MAX_NAME:
        raise fail(f"a type name has at most {MAX_NAME} characters")
    if naming is not None and not NAMING[naming].fullmatch(name):
        raise fail(f"the pack's naming is {naming}; this name does not follow it")
    if naming is None and naming_of(name) is None:
        raise fail("a type is named in dotted lower-case or SCREAMING_SNAKE_CASE")
    if name in RESERVED_NAMES:
        raise fail("this name is reserved by the catalog API")
    rules = set(conventions)
    for number, schema in sorted(event_type.versions.items()):
        at = ("versions", number - 1)
        props = _properties(schema)
        if "tenant-id" in rules and "tenantId" not in (schema.get("required") or ()):
            raise fail(f"version {number}: tenant-scoped events require tenantId", *at)
        paired, lone_previous, lone_new = transition_pairs(props)
        if "transitions" in rules and event_type.is_transition:
            if lone_previous or lone_new:
                odd = sorted(
                    [f"previous{x}" for x in lone_previous] + [f"new{x}" for x in lone_new]
                )
                raise fail(
                    f"version {number}: transition fields come in previousX/newX pairs "
                    f"({', '.join(odd)} has no partner)",
                    *at,
                )
            if not paired:
                raise fail(
                    f"version {number}: a transition event carries previousX/newX "
                    "(or set transition: false)",
                    *at,
                )
        if (
            "updates" in rules
            and event_type.is_update
            and not props & {"changes", "updatedFields"}
            and not paired
        ):
            raise fail(f"version {number}: an updated event carries changes or updatedFields", *at)


def check_pack(pack: Mapping[str, Any], types: Iterable[EventType]) -> None:
    """Check one pack's header and every type in it."""
    naming = pack.get("naming")
    if naming not in NAMING:
        raise CatalogError(
            f"pack {pack.get('pack')!r}: naming must be one of {', '.join(sorted(NAMING))}",
            location=("naming",),
        )
    conventions = pack.get("conventions") or []
    if not isinstance(conventions, list) or not set(conventions) <= CONVENTIONS:
        raise CatalogError(
            f"pack {pack.get('pack')!r}: conventions are a list of "
            f"{', '.join(sorted(CONVENTIONS))}",
            location=("conventions",),
        )
    entries = pack.get("types") or {}
    for event_type in types:
        entry = entries.get(event_type.name) or {}
        if not entry.get("versions"):
            raise CatalogError(
                f"type {event_type.name!r}: declare at least one version (fields or schema)",
                location=("types", event_type.name),
            )
        check_type(event_type, naming=naming, conventions=conventions)


def ref_collisions(types: Iterable[EventType]) -> list[tuple[str, list[str]]]:
    """Schema references shared by several types (``ticket.created`` and
    ``TICKET_CREATED`` are both ``payload.TicketCreated.vN``). Not an error,
    as the envelope names the type beside the schema, but worth a warning."""
    by_ref: dict[str, list[str]] = {}
    for event_type in types:
        by_ref.setdefault(f"payload.{pascal_name(event_type.name)}", []).append(event_type.name)
    return [(ref, sorted(names)) for ref, names in sorted(by_ref.items()) if len(names) > 1]
