"""Is a new schema version compatible with the one before it?

Two directions, as schema registries name them:

* **backward**: every payload valid under the old version is valid under
  the new one (producers still on the old shape keep working; consumers
  written for the new version can read old events in the log);
* **forward**: every payload valid under the new version is valid under the
  old one (consumers written for the old version can read new events).

``tidings catalog diff`` calls a version *compatible* when it is backward
compatible, and lists each change with the directions it breaks. Payload
objects are open (extra fields are allowed) unless a schema says
``additionalProperties: false``, so adding an optional field breaks
neither. Keywords this module does not understand count as breaking both
ways (a conservative answer, never a silent "compatible"). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_LOWER_BOUNDS = ("minLength", "minimum", "exclusiveMinimum", "minItems")
_UPPER_BOUNDS = ("maxLength", "maximum", "exclusiveMaximum", "maxItems")
_ANNOTATIONS = frozenset(
    {"title", "description", "$comment", "examples", "default", "deprecated", "$schema", "$id"}
)
_HANDLED = frozenset(
    {
        "type",
        "properties",
        "required",
        "items",
        "enum",
        "const",
        "format",
        "pattern",
        "additionalProperties",
        *_LOWER_BOUNDS,
        *_UPPER_BOUNDS,
    }
)


@dataclass(frozen=True, slots=True)
class Change:
    pointer: str  # where in the payload ("" = the payload object)
    kind: str  # field_added, field_removed, became_required, type_changed, ...
    detail: str
    backward: bool  # old payloads still valid
    forward: bool  # new payloads valid under the old version

    def to_json(self) -> dict[str, Any]:
        return {
            "pointer": self.pointer,
            "kind": self.kind,
            "detail": self.detail,
            "backward": self.backward,
            "forward": self.forward,
        }


@dataclass(frozen=True, slots=True)
class Compatibility:
    changes: tuple[Change, ...]

    @property
    def backward(self) -> bool:
        return all(c.backward for c in self.changes)

    @property
    def forward(self) -> bool:
        return all(c.forward for c in self.changes)

    @property
    def compatible(self) -> bool:
        return self.backward

    def to_json(self) -> dict[str, Any]:
        return {
            "compatible": self.compatible,
            "backward": self.backward,
            "forward": self.forward,
            "changes": [c.to_json() for c in self.changes],
        }


def compare(old: Mapping[str, Any] | bool, new: Mapping[str, Any] | bool) -> Compatibility:
    changes: list[Change] = []
    _compare(old, new, "", changes)
    return Compatibility(tuple(changes))


def _types(schema: Mapping[str, Any]) -> set[str] | None:
    kind = schema.get("type")
    if kind is None:
        return None
    kinds = {kind} if isinstance(kind, str) else set(kind)
    if "number" in kinds:
        kinds.add("integer")
    return kinds


def _compare(old: Any, new: Any, pointer: str, out: list[Change]) -> None:
    if old == new:
        return
    if not isinstance(old, dict) or not isinstance(new, dict):
        out.append(Change(pointer, "schema_replaced", "the schema was replaced", False, False))
        return
    _compare_types(old, new, pointer, out)
    _compare_enum(old, new, pointer, out)
    _compare_bounds(old, new, pointer, out)
    for key in ("format", "pattern"):
        if old.get(key) != new.get(key):
            added, removed = key not in old, key not in new
            out.append(
                Change(
                    pointer,
                    f"{key}_changed",
                    f"{key} {old.get(key)!r} -> {new.get(key)!r}",
                    backward=removed,
                    forward=added,
                )
            )
    _compare_objects(old, new, pointer, out)
    if "items" in old or "items" in new:
        _compare(old.get("items", True), new.get("items", True), pointer + "/*", out)
    unknown = sorted(
        key
        for key in (old.keys() | new.keys()) - _HANDLED - _ANNOTATIONS
        if old.get(key) != new.get(key)
    )
    for key in unknown:
        out.append(Change(pointer, "keyword_changed", f"{key} changed", False, False))


def _compare_types(
    old: dict[str, Any], new: dict[str, Any], pointer: str, out: list[Change]
) -> None:
    before, after = _types(old), _types(new)
    if before == after:
        return
    widened = after is None or (before is not None and before <= after)
    narrowed = before is None or (after is not None and after <= before)
    out.append(
        Change(
            pointer,
            "type_changed",
            f"type {old.get('type')!r} -> {new.get('type')!r}",
            backward=widened,
            forward=narrowed,
        )
    )


def _enum_of(schema: Mapping[str, Any]) -> list[Any] | None:
    if "const" in schema:
        return [schema["const"]]
    enum = schema.get("enum")
    return list(enum) if isinstance(enum, list) else None


def _compare_enum(
    old: dict[str, Any], new: dict[str, Any], pointer: str, out: list[Change]
) -> None:
    before, after = _enum_of(old), _enum_of(new)
    if before == after:
        return
    if before is None or after is None:
        out.append(
            Change(
                pointer,
                "enum_changed",
                "values restricted" if before is None else "value restriction lifted",
                backward=after is None,
                forward=before is None,
            )
        )
        return
    removed = [v for v in before if v not in after]
    added = [v for v in after if v not in before]
    if removed:
        out.append(Change(pointer, "enum_values_removed", f"removed {removed}", False, True))
    if added:
        out.append(Change(pointer, "enum_values_added", f"added {added}", True, False))


def _compare_bounds(
    old: dict[str, Any], new: dict[str, Any], pointer: str, out: list[Change]
) -> None:
    for key in (*_LOWER_BOUNDS, *_UPPER_BOUNDS):
        before, after = old.get(key), new.get(key)
        if before == after:
            continue
        lower = key in _LOWER_BOUNDS
        if before is None or after is None:
            tighter = before is None
        else:
            tighter = after > before if lower else after < before
        out.append(
            Change(
                pointer,
                "constraint_tightened" if tighter else "constraint_loosened",
                f"{key} {before!r} -> {after!r}",
                backward=not tighter,
                forward=tighter,
            )
        )


def _compare_objects(
    old: dict[str, Any], new: dict[str, Any], pointer: str, out: list[Change]
) -> None:
    old_props: dict[str, Any] = old.get("properties") or {}
    new_props: dict[str, Any] = new.get("properties") or {}
    old_req, new_req = set(old.get("required") or ()), set(new.get("required") or ())
    old_open = old.get("additionalProperties", True) is not False
    new_open = new.get("additionalProperties", True) is not False
    if old_open != new_open:
        out.append(
            Change(
                pointer,
                "additional_properties_changed",
                "extra fields " + ("refused" if old_open else "allowed"),
                backward=new_open,
                forward=old_open,
            )
        )
    for name in sorted(old_props.keys() | new_props.keys() | old_req | new_req):
        at = f"{pointer}/{name}"
        was, now = name in old_props, name in new_props
        if was and not now:
            required = name in old_req
            out.append(
                Change(
                    at,
                    "field_removed",
                    f"{name!r} was removed" + (" (it was required)" if required else ""),
                    backward=new_open,
                    forward=not required,
                )
            )
            continue
        if now and not was:
            required = name in new_req
            out.append(
                Change(
                    at,
                    "field_added",
                    f"{name!r} was added as " + ("required" if required else "optional"),
                    backward=not required,
                    forward=old_open,
                )
            )
            continue
        if name in new_req and name not in old_req:
            out.append(Change(at, "became_required", f"{name!r} is now required", False, True))
        elif name in old_req and name not in new_req:
            out.append(Change(at, "became_optional", f"{name!r} is now optional", True, False))
        if was and now:
            _compare(old_props[name], new_props[name], at, out)
