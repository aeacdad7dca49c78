"""Rule conditions (pure): every op and group, absent paths, JSON equality,
validation pointers, and properties against an independent reference
evaluator over random envelopes and random valid specs."""

from __future__ import annotations

import math
import operator
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tidings.core.conditions import (
    ALWAYS,
    MAX_IN_ITEMS,
    MAX_NODES,
    MAX_VALUE_DEPTH,
    Condition,
    compile_conditions,
    compile_path,
    resolve_path,
)
from tidings.errors import InvalidInput

EVENT: dict[str, Any] = {
    "type": "qms.ticket.created",
    "tenantId": "t1",
    "timestamp": "2024-05-01T10:00:00Z",
    "actor": {"userId": "u1", "name": "Ada"},
    "metadata": {"source": "web"},
    "data": {
        "priority": "HIGH",
        "score": 85,
        "ratio": 0.5,
        "flag": True,
        "nothing": None,
        "tags": ["urgent", "vip", 3, [1, 2]],
        "items": [{"sku": "A-1", "qty": 2}, {"sku": "B-2", "qty": 1}],
        "nested": {"0": "key zero", "a": {"b": [10, 20]}},
        "$weird-key_1": "ok",
    },
}


def leaf(path: str, op: str, value: Any = ...) -> dict[str, Any]:
    spec: dict[str, Any] = {"path": path, "op": op}
    if value is not ...:
        spec["value"] = value
    return spec


def check(spec: Any, envelope: Any = EVENT) -> bool:
    return compile_conditions(spec).matches(envelope)


# -- examples ----------------------------------------------------------------


def test_no_conditions_match_everything() -> None:
    specs: list[Any] = [None, {}]
    for spec in specs:
        condition = compile_conditions(spec)
        assert condition is ALWAYS and condition.always
        assert condition.matches({}) and condition.matches(EVENT)
        assert condition.to_json() == {} and condition.paths() == frozenset()


def test_the_example_from_the_rule_docs() -> None:
    spec = {
        "all": [
            {"path": "data.priority", "op": "eq", "value": "HIGH"},
            {
                "any": [
                    {"path": "data.score", "op": "gte", "value": 80},
                    {"not": {"path": "data.campaignId", "op": "exists"}},
                ]
            },
        ]
    }
    condition = compile_conditions(spec)
    assert condition.matches(EVENT)
    assert not condition.always
    assert condition.paths() == {"data.priority", "data.score", "data.campaignId"}
    low = {**EVENT, "data": {"priority": "HIGH", "score": 10, "campaignId": "c"}}
    assert not condition.matches(low)
    assert condition.matches({**EVENT, "data": {"priority": "HIGH", "score": 10}})


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (leaf("type", "eq", "qms.ticket.created"), True),
        (leaf("tenantId", "eq", "t2"), False),
        (leaf("actor.userId", "eq", "u1"), True),
        (leaf("metadata.source", "ne", "api"), True),
        (leaf("metadata.source", "ne", "web"), False),
        (leaf("data.nothing", "eq", None), True),
        (leaf("data.tags", "eq", ["urgent", "vip", 3, [1, 2]]), True),
        (leaf("data.tags", "eq", ["urgent", "vip", 3]), False),
        (leaf("data.nested.a", "eq", {"b": [10, 20]}), True),
        (leaf("data.nested.a", "eq", {"b": [10, 20], "c": 1}), False),
        (leaf("data.nested.a", "eq", {"c": [10, 20]}), False),
        (leaf("data.priority", "in", ["LOW", "HIGH"]), True),
        (leaf("data.priority", "in", ["LOW"]), False),
        (leaf("data.priority", "in", []), False),
        (leaf("data.priority", "not_in", ["LOW"]), True),
        (leaf("data.priority", "not_in", ["HIGH"]), False),
        (leaf("data.nested.a", "in", [1, {"b": [10, 20]}]), True),
        (leaf("data.score", "gt", 84), True),
        (leaf("data.score", "gt", 85), False),
        (leaf("data.score", "gte", 85.0), True),
        (leaf("data.score", "lt", 85.5), True),
        (leaf("data.score", "lte", 84.9), False),
        (leaf("data.score", "gt", "80"), False),  # mixed types never order
        (leaf("data.flag", "gt", 0), False),  # booleans are not numbers
        (leaf("timestamp", "gte", "2024-05-01T00:00:00Z"), True),
        (leaf("timestamp", "lt", "2024-05-01T00:00:00Z"), False),
        (leaf("data.priority", "exists"), True),
        (leaf("data.priority", "exists", False), False),
        (leaf("data.nothing", "exists"), True),  # a present null exists
        (leaf("data.missing", "exists", False), True),
        (leaf("data.priority", "contains", "IG"), True),
        (leaf("data.priority", "contains", "low"), False),
        (leaf("data.tags", "contains", "vip"), True),
        (leaf("data.tags", "contains", "vi"), False),  # elements, not substrings
        (leaf("data.tags", "contains", [1, 2]), True),
        (leaf("data.tags", "contains", 3.0), True),
        (leaf("data.score", "contains", 8), False),
        (leaf("data.priority", "contains", 1), False),
        (leaf("data.priority", "starts_with", "HI"), True),
        (leaf("data.priority", "starts_with", "IG"), False),
        (leaf("data.priority", "ends_with", "GH"), True),
        (leaf("data.score", "ends_with", "5"), False),
    ],
)
def test_every_op(spec: dict[str, Any], expected: bool) -> None:
    assert check(spec) is expected


@pytest.mark.parametrize(
    ("op", "value", "expected"),
    [
        ("eq", "x", False),
        ("ne", "x", True),
        ("in", ["x"], False),
        ("not_in", ["x"], True),
        ("gt", 1, False),
        ("gte", 1, False),
        ("lt", 1, False),
        ("lte", "z", False),
        ("exists", True, False),
        ("exists", False, True),
        ("contains", "x", False),
        ("starts_with", "", False),
        ("ends_with", "", False),
        ("eq", None, False),  # absent is not null
    ],
)
def test_absent_paths(op: str, value: Any, expected: bool) -> None:
    for path in ("data.missing", "nope", "data.priority.deeper", "data.tags.9", "data.tags.x"):
        assert check(leaf(path, op, value)) is expected, path


def test_groups() -> None:
    yes, no = leaf("tenantId", "eq", "t1"), leaf("tenantId", "eq", "t2")
    assert check({"all": [yes, yes]}) and not check({"all": [yes, no]})
    assert check({"any": [no, yes]}) and not check({"any": [no, no]})
    assert check({"not": no}) and not check({"not": yes})
    assert check({"all": []}) and compile_conditions({"all": []}).always
    assert not check({"any": []}) and not compile_conditions({"any": []}).always
    assert check({"not": {"any": []}})
    assert check({"all": [{"not": {"all": [yes, no]}}, {"any": [{"all": []}]}]})


def test_list_indexing() -> None:
    assert check(leaf("data.items.1.sku", "eq", "B-2"))
    assert check(leaf("data.items.0.qty", "gt", 1))
    assert not check(leaf("data.items.2.sku", "exists"))
    assert not check(leaf("data.items.01.sku", "exists"))  # 01 is not an index
    assert not check(leaf("data.items.-1.sku", "exists"))  # no negative indexing
    assert check(leaf("data.nested.0", "eq", "key zero"))  # digits are keys in objects
    assert check(leaf("data.nested.a.b.1", "eq", 20))
    assert check(leaf("data.$weird-key_1", "eq", "ok"))
    assert check(leaf("data.items.0.sku", "eq", "A-1"), {"data": {"items": ({"sku": "A-1"},)}})


def test_json_equality_edge_cases() -> None:
    env = {
        "data": {"t": True, "one": 1, "onef": 1.0, "zero": 0, "list": [True, 1], "nan": math.nan}
    }
    assert not check(leaf("data.t", "eq", 1))
    assert not check(leaf("data.one", "eq", True))
    assert not check(leaf("data.zero", "eq", False))
    assert check(leaf("data.t", "eq", True), env)
    assert check(leaf("data.one", "eq", 1.0), env)
    assert check(leaf("data.onef", "eq", 1), env)
    assert not check(leaf("data.t", "eq", 1), env)
    assert not check(leaf("data.one", "eq", True), env)
    assert check(leaf("data.t", "ne", 1), env)
    assert not check(leaf("data.t", "in", [1, 0]), env)
    assert check(leaf("data.t", "in", [1, True]), env)
    assert check(leaf("data.one", "in", [True, 1.0]), env)
    assert not check(leaf("data.one", "in", [True]), env)
    assert check(leaf("data.zero", "not_in", [False, None, ""]), env)
    assert check(leaf("data.list", "eq", [True, 1.0]), env)
    assert not check(leaf("data.list", "eq", [1, True]), env)
    assert not check(leaf("data.list", "contains", 0), env)
    assert check(leaf("data.list", "contains", 1), env)
    assert not check(leaf("data.nan", "eq", 0), env)
    assert not check(leaf("data.nan", "gte", 0), env) and not check(leaf("data.nan", "lt", 0), env)
    assert check(leaf("data.nan", "ne", 0), env)
    big = {"data": {"n": 10**400, "inf": math.inf}}
    assert check(leaf("data.n", "gt", 1e308), big) and not check(leaf("data.n", "eq", 1e308), big)
    assert check(leaf("data.inf", "gt", 10**400), big)
    assert check(leaf("data.n", "eq", 10**400), big)


def test_matching_tolerates_odd_envelopes() -> None:
    condition = compile_conditions(
        {"any": [leaf("a.b.c", "eq", [1]), leaf("a.0", "contains", {"x": 1}), leaf("a", "gt", 1)]}
    )
    odd: list[Any] = [
        {},
        [],
        None,
        "a",
        42,
        {"a": object()},
        {"a": {1: 2, None: 3}},
        {"a": {"b": {"c": (1,)}}},
        {"a": [[{"x": 1}], set()]},
        MappingProxyType({"a": {"b": {"c": [1.0]}}}),
    ]
    results = [condition.matches(e) for e in odd]
    assert results == [False] * 7 + [True, True, True]


def test_deep_envelopes_and_deep_values_do_not_overflow() -> None:
    deep: Any = "bottom"
    for _ in range(50_000):
        deep = [deep]
    value: Any = "bottom"
    for _ in range(31):
        value = [value]
    condition = compile_conditions(
        {"any": [leaf("data.x", "eq", value), leaf("data.x", "contains", value)]}
    )
    assert not condition.matches({"data": {"x": deep}})
    assert condition.matches({"data": {"x": [value]}})


def test_resolve_path_and_compile_path() -> None:
    path = compile_path("data.items.0.sku")
    assert path == (("data", None), ("items", None), ("0", 0), ("sku", None))
    assert resolve_path(EVENT, path) == (True, "A-1")
    assert resolve_path(EVENT, compile_path("data.nothing")) == (True, None)
    assert resolve_path(EVENT, compile_path("data.nope")) == (False, None)
    assert resolve_path(None, path) == (False, None)


def test_to_json_normalises_and_copies() -> None:
    spec = {"all": [leaf("a", "exists"), leaf("b", "in", [1, {"c": [2]}])]}
    condition = compile_conditions(spec)
    assert condition.to_json() == {
        "all": [
            {"path": "a", "op": "exists", "value": True},
            {"path": "b", "op": "in", "value": [1, {"c": [2]}]},
        ]
    }
    spec["all"][1]["value"][1]["c"].append(3)  # later edits of the spec do not leak in
    out = condition.to_json()
    assert out["all"][1]["value"] == [1, {"c": [2]}]
    out["all"][1]["value"].clear()
    assert condition.matches({"a": 0, "b": {"c": [2]}})
    assert "Condition(" in repr(condition)


# -- validation ----------------------------------------------------------------

ROOT = "/trigger/conditions"


@pytest.mark.parametrize(
    ("spec", "pointer"),
    [
        ([], ROOT),
        ("data.x", ROOT),
        ({"path": "a", "op": "eq", "value": 1, "extra": 1}, f"{ROOT}/extra"),
        ({"path": "a", "op": "eq", "value": 1, "a/b~": 1}, f"{ROOT}/a~1b~0"),
        ({"op": "eq", "value": 1}, f"{ROOT}/path"),
        ({"path": "a", "value": 1}, f"{ROOT}/op"),
        ({"path": "a", "op": "matches", "value": 1}, f"{ROOT}/op"),
        ({"path": "a", "op": 3, "value": 1}, f"{ROOT}/op"),
        ({"path": "a", "op": "eq"}, f"{ROOT}/value"),
        ({"path": "", "op": "exists"}, f"{ROOT}/path"),
        ({"path": "a..b", "op": "exists"}, f"{ROOT}/path"),
        ({"path": "a.b c", "op": "exists"}, f"{ROOT}/path"),
        ({"path": "a.é", "op": "exists"}, f"{ROOT}/path"),
        ({"path": ".a", "op": "exists"}, f"{ROOT}/path"),
        ({"path": ["a"], "op": "exists"}, f"{ROOT}/path"),
        ({"path": "a" * 257, "op": "exists"}, f"{ROOT}/path"),
        ({"path": "a", "op": "exists", "value": "yes"}, f"{ROOT}/value"),
        ({"path": "a", "op": "in", "value": "x"}, f"{ROOT}/value"),
        ({"path": "a", "op": "not_in", "value": {"x": 1}}, f"{ROOT}/value"),
        ({"path": "a", "op": "in", "value": list(range(MAX_IN_ITEMS + 1))}, f"{ROOT}/value"),
        ({"path": "a", "op": "gt", "value": True}, f"{ROOT}/value"),
        ({"path": "a", "op": "lte", "value": None}, f"{ROOT}/value"),
        ({"path": "a", "op": "starts_with", "value": 1}, f"{ROOT}/value"),
        ({"path": "a", "op": "ends_with", "value": ["x"]}, f"{ROOT}/value"),
        ({"path": "a", "op": "eq", "value": math.nan}, f"{ROOT}/value"),
        ({"path": "a", "op": "eq", "value": [1, {"k": math.inf}]}, f"{ROOT}/value/1/k"),
        ({"path": "a", "op": "in", "value": [1, (2,)]}, f"{ROOT}/value/1"),
        ({"path": "a", "op": "eq", "value": {1: 2}}, f"{ROOT}/value"),
        ({"all": {}}, f"{ROOT}/all"),
        ({"any": "x"}, f"{ROOT}/any"),
        ({"all": [], "any": []}, f"{ROOT}/any"),
        ({"not": {}, "path": "a"}, f"{ROOT}/path"),
        ({"not": []}, f"{ROOT}/not"),
        ({"not": {}}, f"{ROOT}/not"),
        ({"all": [{}]}, f"{ROOT}/all/0"),
        (
            {"all": [leaf("a", "exists"), {"any": [{"path": "b", "op": "nope"}]}]},
            f"{ROOT}/all/1/any/0/op",
        ),
        (
            {"all": [leaf("a", "exists"), {"any": [{"path": "b", "op": "eq"}]}]},
            f"{ROOT}/all/1/any/0/value",
        ),
        (
            {"any": [leaf("a", "exists"), {"not": {"path": "b c", "op": "exists"}}]},
            f"{ROOT}/any/1/not/path",
        ),
        ({"any": [{"all": [leaf("a", "exists"), 5]}]}, f"{ROOT}/any/0/all/1"),
    ],
)
def test_invalid_specs_name_the_pointer(spec: Any, pointer: str) -> None:
    with pytest.raises(InvalidInput) as info:
        compile_conditions(spec)
    assert info.value.field == pointer


def test_a_custom_root_pointer() -> None:
    with pytest.raises(InvalidInput) as info:
        compile_conditions({"not": {"path": "a"}}, field="/rules/3/conditions")
    assert info.value.field == "/rules/3/conditions/not/op"


def test_limits() -> None:
    spec: dict[str, Any] = leaf("a", "exists")
    for _ in range(9):
        spec = {"not": spec}
    compile_conditions(spec)  # ten deep: allowed
    with pytest.raises(InvalidInput) as info:
        compile_conditions({"not": spec})
    assert info.value.field == ROOT + "/not" * 10

    compile_conditions({"any": [leaf("a", "exists")] * (MAX_NODES - 1)})
    with pytest.raises(InvalidInput) as info:
        compile_conditions({"any": [leaf("a", "exists")] * MAX_NODES})
    assert info.value.field == f"{ROOT}/any/{MAX_NODES - 1}"

    compile_conditions(leaf("a", "in", list(range(MAX_IN_ITEMS))))

    value: Any = 1
    for _ in range(MAX_VALUE_DEPTH):
        value = [value]
    compile_conditions(leaf("a", "eq", value))
    with pytest.raises(InvalidInput) as info:
        compile_conditions(leaf("a", "eq", [value]))
    assert info.value.field == ROOT + "/value" + "/0" * MAX_VALUE_DEPTH


def test_self_referencing_specs_are_refused_not_overflowed() -> None:
    loop: dict[str, Any] = {}
    loop["not"] = loop
    with pytest.raises(InvalidInput):
        compile_conditions(loop)
    values: list[Any] = []
    values.append(values)
    with pytest.raises(InvalidInput):
        compile_conditions(leaf("a", "eq", values))


# -- properties ------------------------------------------------------------------

SEGMENTS = ["a", "b", "c", "0", "1", "01", "x-y", "$k"]
KEYS = st.sampled_from(SEGMENTS) | st.text(max_size=4)
SHARED = st.sampled_from([0, 1, 1.0, -2.5, True, False, None, "", "a", "ab", "b", "0"])
ENV_SCALARS = (
    SHARED
    | st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**63, max_value=10**400)
    | st.floats()  # NaN and infinities included
    | st.text(max_size=6)
)
ENV_VALUES = st.recursive(
    ENV_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=20,
)
ENVELOPES = st.dictionaries(KEYS, ENV_VALUES, max_size=5)

SPEC_SCALARS = (
    SHARED
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=4)
    | st.none()
)
SPEC_VALUES = SHARED | st.recursive(  # edge values half of the time
    SPEC_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3),
    max_leaves=6,
)
PATHS = st.lists(st.sampled_from(SEGMENTS), min_size=1, max_size=3).map(".".join)
ORDERED_VALUES = st.sampled_from([0, 1, 1.0, -2.5, "", "a", "b"]) | (
    st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=3)
)
STRINGS = st.sampled_from(["", "a", "b", "ab"]) | st.text(max_size=3)


def _leaf_spec(path: str, op: str, value: Any) -> dict[str, Any]:
    return leaf(path, op, value)


LEAVES = st.one_of(
    st.builds(_leaf_spec, PATHS, st.sampled_from(["eq", "ne", "contains"]), SPEC_VALUES),
    st.builds(
        _leaf_spec, PATHS, st.sampled_from(["in", "not_in"]), st.lists(SPEC_VALUES, max_size=4)
    ),
    st.builds(_leaf_spec, PATHS, st.sampled_from(["gt", "gte", "lt", "lte"]), ORDERED_VALUES),
    st.builds(_leaf_spec, PATHS, st.sampled_from(["starts_with", "ends_with"]), STRINGS),
    st.builds(_leaf_spec, PATHS, st.just("exists"), st.booleans() | st.just(...)),
)


def _nodes(depth: int) -> st.SearchStrategy[dict[str, Any]]:
    if depth >= 4:
        return LEAVES
    inner = _nodes(depth + 1)
    return st.one_of(
        LEAVES,
        st.lists(inner, max_size=3).map(lambda c: {"all": c}),
        st.lists(inner, max_size=3).map(lambda c: {"any": c}),
        inner.map(lambda c: {"not": c}),
    )


SPECS: st.SearchStrategy[Any] = st.none() | st.just({}) | _nodes(1)


# An independent reference, written from the documented semantics.

ABSENT = object()


def ref_resolve(envelope: Any, path: str) -> Any:
    current = envelope
    for segment in path.split("."):
        if isinstance(current, dict):
            if segment not in current:
                return ABSENT
            current = current[segment]
        elif isinstance(current, list | tuple):
            if not segment.isdigit() or str(int(segment)) != segment:
                return ABSENT
            if int(segment) >= len(current):
                return ABSENT
            current = current[int(segment)]
        else:
            return ABSENT
    return current


def kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if value is None:
        return "null"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "other"


def ref_eq(a: Any, b: Any) -> bool:
    if kind(a) != kind(b) or kind(a) == "other":
        return False
    if kind(a) == "array":
        return len(a) == len(b) and all(ref_eq(x, y) for x, y in zip(a, b, strict=True))
    if kind(a) == "object":
        return set(a) == set(b) and all(ref_eq(a[k], b[k]) for k in a)
    return bool(a == b)


ORDER = {"gt": operator.gt, "gte": operator.ge, "lt": operator.lt, "lte": operator.le}


def ref_eval(spec: Any, envelope: Any) -> bool:
    if not spec:
        return True
    if "all" in spec:
        return all(ref_eval(c, envelope) for c in spec["all"])
    if "any" in spec:
        return any(ref_eval(c, envelope) for c in spec["any"])
    if "not" in spec:
        return not ref_eval(spec["not"], envelope)
    op: str = spec["op"]
    value: Any = spec.get("value", True)
    actual = ref_resolve(envelope, spec["path"])
    if actual is ABSENT:
        return op in ("ne", "not_in") or (op == "exists" and value is False)
    if op in ("eq", "ne"):
        return ref_eq(actual, value) == (op == "eq")
    if op in ("in", "not_in"):
        return any(ref_eq(actual, v) for v in value) == (op == "in")
    if op in ORDER:
        same = kind(actual) == kind(value) and kind(value) in ("number", "string")
        return same and bool(ORDER[op](actual, value))
    if op == "exists":
        return bool(value)
    if op == "contains":
        if kind(actual) == "string":
            return kind(value) == "string" and bool(value in actual)
        return kind(actual) == "array" and any(ref_eq(x, value) for x in actual)
    if kind(actual) != "string":
        return False
    return bool(actual.startswith(value) if op == "starts_with" else actual.endswith(value))


@settings(max_examples=300, deadline=None)
@given(spec=SPECS, envelopes=st.lists(ENVELOPES, min_size=1, max_size=4))
def test_matches_never_raises_and_agrees_with_the_reference(
    spec: Any, envelopes: list[dict[str, Any]]
) -> None:
    condition = compile_conditions(spec)
    again = compile_conditions(condition.to_json())
    assert again.to_json() == condition.to_json()
    for envelope in envelopes:
        result = condition.matches(envelope)
        assert result is ref_eval(spec, envelope)
        assert again.matches(envelope) is result
        if condition.always:
            assert result


def twins(value: Any) -> list[Any]:
    """``value`` and look-alikes on either side of the semantics' edges:
    ``1`` -> ``True``, ``1.0``, ``2``; ``"ab"`` -> ``"abx"``, ``"a"``; ..."""
    if isinstance(value, bool):
        return [value, int(value), float(value), not value]
    if isinstance(value, int | float):
        near = [value, value + 1, value - 1, -value]
        if isinstance(value, float) and value.is_integer():
            near.append(int(value))
        if isinstance(value, int) and abs(value) < 2**53:
            near.append(float(value))
        if value in (0, 1):
            near.append(bool(value))
        return near
    if isinstance(value, str):
        return [value, value + "x", "x" + value, value[:1], value[1:], ""]
    if isinstance(value, list):
        changed = [twins(value[0])[1], *value[1:]] if value else [None]
        return [value, tuple(value), value[:-1], [*value, 0], changed]
    if isinstance(value, dict):
        return [value, {**value, "z": 1}, dict(list(value.items())[1:])]
    return [None, 0, False, "", [], {}]


def spec_values(spec: Any) -> list[Any]:
    if "path" in spec:
        value = spec.get("value")
        items = value if spec["op"] in ("in", "not_in") else [value]
        return [twin for item in items for twin in twins(item)] + (
            [[*value[:1], twin] for twin in twins(value[0])]
            if spec["op"] == "contains" and isinstance(value, list) and value
            else []
        )
    children = spec.get("all", spec.get("any", [spec.get("not")]))
    return [v for child in children for v in spec_values(child)]


OTHER_VALUES = (
    st.lists(SHARED, max_size=3)
    | st.dictionaries(st.sampled_from(SEGMENTS), SHARED, max_size=2)
    | ENV_VALUES
    | SPEC_VALUES
)


def along(data: st.DataObject, segments: list[str], values: st.SearchStrategy[Any]) -> Any:
    """A value that follows ``segments`` through objects and lists (indexes
    possibly out of range), or stops early at a scalar."""
    if not segments:
        return data.draw(values)
    head, rest = segments[0], segments[1:]
    shape = data.draw(st.sampled_from(["object", "object", "list", "stop"]))
    if shape == "stop":
        return data.draw(values)
    child = along(data, rest, values)
    if shape == "list":
        items = data.draw(st.lists(values, max_size=2))
        position = int(head) if head.isdigit() else len(items)
        items.insert(min(position, len(items)), child)
        return items
    return {**data.draw(st.dictionaries(KEYS, values, max_size=2)), head: child}


def merge(a: Any, b: Any) -> Any:
    if not (isinstance(a, dict) and isinstance(b, dict)):
        return b
    return {**a, **{k: merge(a[k], v) if k in a else v for k, v in b.items()}}


@settings(max_examples=400, deadline=None)
@given(spec=_nodes(1), data=st.data())
def test_agrees_with_the_reference_on_values_planted_at_its_paths(
    spec: Any, data: st.DataObject
) -> None:
    # Random envelopes rarely reach a path, let alone hold a look-alike of the
    # value tested there: build ones that do (or almost).
    condition = compile_conditions(spec)
    values = st.sampled_from(spec_values(spec) or [None]) | OTHER_VALUES
    envelope: dict[str, Any] = {}
    for path in sorted(condition.paths()):
        head, *rest = path.split(".")
        envelope = merge(envelope, {head: along(data, rest, values)})
    assert condition.matches(envelope) is ref_eval(spec, envelope)


LOOKALIKES = [0, 1, 1.0, 0.0, -0.0, 2, True, False, None, "", "1", "a", "ab"]
LOOKALIKE_SPECS = st.sampled_from(LOOKALIKES) | st.recursive(  # scalars half of the time
    st.sampled_from(LOOKALIKES),
    lambda inner: (
        st.lists(inner, max_size=2) | st.dictionaries(st.sampled_from("ab"), inner, max_size=2)
    ),
    max_leaves=4,
)
LOOKALIKE_ACTUALS = st.sampled_from([*LOOKALIKES, math.nan, math.inf]) | st.recursive(
    st.sampled_from([*LOOKALIKES, math.nan, math.inf]),
    lambda inner: (
        st.lists(inner, max_size=2)
        | st.lists(inner, max_size=2).map(tuple)
        | st.dictionaries(st.sampled_from("ab"), inner, max_size=2)
    ),
    max_leaves=4,
)


@settings(max_examples=500, deadline=None)
@given(actual=LOOKALIKE_ACTUALS, value=LOOKALIKE_SPECS, other=LOOKALIKE_SPECS)
@example(actual=True, value=1, other=0)
@example(actual=1, value=True, other=False)
@example(actual=0.0, value=False, other=None)
@example(actual=1, value=1.0, other="1")
@example(actual=(1,), value=[True], other=[1.0])
@example(actual={"a": [0]}, value={"a": [False]}, other={"a": [0.0]})
@example(actual=[True, {"a": False}], value=[1, {"a": 0}], other=[[1]])
@example(actual=math.nan, value=0, other=[])
def test_every_op_agrees_with_the_reference_on_look_alike_values(
    actual: Any, value: Any, other: Any
) -> None:
    # Dense in the cases that matter: True vs 1, 1 vs 1.0, [1] vs (1,), "" vs 0.
    specs = [
        leaf("x", "eq", value),
        leaf("x", "ne", value),
        leaf("x", "in", [value, other]),
        leaf("x", "not_in", [other, value]),
        leaf("x", "contains", value),
    ]
    if isinstance(value, str) or (isinstance(value, int | float) and not isinstance(value, bool)):
        specs += [leaf("x", op, value) for op in ("gt", "gte", "lt", "lte")]
    if isinstance(value, str):
        specs += [leaf("x", "starts_with", value), leaf("x", "ends_with", value)]
    envelope = {"x": actual}
    for spec in specs:
        assert compile_conditions(spec).matches(envelope) is ref_eval(spec, envelope), spec


JUNK_KEYS = st.sampled_from(["all", "any", "not", "path", "op", "value", "x"]) | st.integers()
JUNK = st.recursive(
    ENV_SCALARS | st.sampled_from(sorted(["eq", "in", "exists", "gt", "a.b", "0", "a..b"])),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(JUNK_KEYS, inner, max_size=4)
        | st.tuples(inner)
        | st.sets(st.integers(), max_size=2)
    ),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(spec=JUNK, envelope=ENVELOPES)
def test_junk_specs_compile_or_raise_invalid_input(spec: Any, envelope: dict[str, Any]) -> None:
    try:
        condition = compile_conditions(spec)
    except InvalidInput as exc:
        assert exc.field is not None and exc.field.startswith(ROOT)
        return
    assert isinstance(condition, Condition)
    assert isinstance(condition.matches(envelope), bool)
    assert compile_conditions(condition.to_json()).to_json() == condition.to_json()
