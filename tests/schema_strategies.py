"""Hypothesis strategies built from catalog payload schemas.

``valid(schema)`` draws payloads the schema accepts; it covers the subset
the catalog's schemas use and raises on anything else, so a test can never
silently generate from a schema it does not understand. ``json_values``
draws arbitrary JSON (for fuzzing validators).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import strategies as st

ANNOTATIONS = {"title", "description", "$comment", "examples", "default"}
SUPPORTED = ANNOTATIONS | {
    "type",
    "properties",
    "required",
    "items",
    "enum",
    "const",
    "format",
    "minLength",
    "anyOf",
    "allOf",
}

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)

_date_times = st.datetimes(
    min_value=datetime(1970, 1, 2), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
).map(lambda d: d.isoformat().replace("+00:00", "Z"))
_dates = st.dates().map(lambda d: d.isoformat())
_emails = st.from_regex(r"[a-z0-9._]{1,12}@[a-z0-9]{1,10}\.[a-z]{2,4}", fullmatch=True)
_numbers = st.integers(-(10**9), 10**9) | st.floats(
    allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12
)


def valid(schema: Any) -> st.SearchStrategy[Any]:
    if schema is True or schema == {}:
        return json_values
    if not isinstance(schema, dict) or not set(schema) <= SUPPORTED:
        raise ValueError(f"no strategy for schema keys {sorted(set(schema) - SUPPORTED)}")
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if "const" in schema:
        return st.just(schema["const"])
    kind = schema.get("type")
    if isinstance(kind, list):
        return st.one_of([valid({**schema, "type": k}) for k in kind])
    if kind == "string":
        fmt = schema.get("format")
        if fmt == "date-time":
            return _date_times
        if fmt == "date":
            return _dates
        if fmt == "email":
            return _emails
        return st.text(min_size=schema.get("minLength", 0), max_size=24)
    if kind == "number":
        return _numbers
    if kind == "integer":
        return st.integers(-(10**9), 10**9)
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    if kind == "array":
        return st.lists(valid(schema.get("items", {})), max_size=3)
    if kind == "object":
        return _object(schema)
    raise ValueError(f"no strategy for type {kind!r}")


def _groups(schema: dict[str, Any]) -> list[list[str]]:
    """``anyOf: [{required: [a]}, {required: [b]}]`` groups: one of each is required."""
    groups = []
    for part in [schema, *schema.get("allOf", [])]:
        if "anyOf" in part:
            groups.append([option["required"][0] for option in part["anyOf"]])
    return groups


@st.composite
def _object(draw: st.DrawFn, schema: dict[str, Any]) -> dict[str, Any]:
    properties: dict[str, Any] = schema.get("properties", {})
    if not properties and not schema.get("required"):
        return draw(st.dictionaries(st.text(max_size=8), json_scalars, max_size=3))
    required = set(schema.get("required", []))
    for group in _groups(schema):
        required.add(draw(st.sampled_from(group)))
    out: dict[str, Any] = {}
    for name, sub in properties.items():
        if name in required or draw(st.booleans()):
            out[name] = draw(valid(sub))
    return out
