"""Schema patterns run in linear time (RE2): catastrophic patterns answer at
once, patterns RE2 cannot run are refused when the type is defined, and the
RE2 keywords agree with ``jsonschema`` on ordinary patterns."""

from __future__ import annotations

import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from support import Admin, ServerProcess
from tidings.core.validation import PayloadValidator, SchemaValidator, pattern_problem

CATASTROPHIC = [
    (r"^(a+)+$", "a" * 30_000 + "b"),
    (r"^(a|a)*$", "a" * 30_000 + "b"),
    (r"^(a|aa)+$", "a" * 30_000 + "b"),
    (r"(x+x+)+y", "x" * 30_000),
    (r"^(\w+\s?)*$", "word " * 6_000 + "!"),
    (r"^([a-z0-9]+)*@$", "a1" * 15_000),
]


@pytest.mark.parametrize(("pattern", "text"), CATASTROPHIC)
def test_catastrophic_patterns_answer_at_once(pattern: str, text: str) -> None:
    schema = {
        "type": "object",
        "properties": {"code": {"type": "string", "pattern": pattern}},
        "patternProperties": {pattern: {"type": "integer"}},
    }
    validator = PayloadValidator(schema)
    started = time.monotonic()
    assert not validator.check({"code": text})
    violations = validator.violations({"code": text})
    assert ("/code", "pattern") in {(v.pointer, v.rule) for v in violations}
    assert not validator.violations({text: 1})  # a key tried against patternProperties
    assert time.monotonic() - started < 2.0  # a backtracking engine takes years


@pytest.mark.parametrize(
    ("schema", "where"),
    [
        ({"properties": {"a": {"pattern": r"(a)\1"}}}, ("properties", "a", "pattern")),
        ({"properties": {"a": {"pattern": "(?=a)a"}}}, ("properties", "a", "pattern")),
        ({"properties": {"a": {"pattern": "(?<=a)b"}}}, ("properties", "a", "pattern")),
        ({"patternProperties": {"(?!x)": {}}}, ("patternProperties", "(?!x)")),
        (
            {"properties": {"l": {"items": {"pattern": r"(?P<x>a)(?P=x)"}}}},
            ("properties", "l", "items", "pattern"),
        ),
        ({"patternProperties": {"^a": {}}, "unevaluatedProperties": False}, ()),
    ],
)
def test_patterns_re2_cannot_run_are_refused_with_their_location(
    schema: dict[str, Any], where: tuple[Any, ...]
) -> None:
    problem = pattern_problem(schema)
    assert problem is not None and problem[0] == where


def test_pattern_like_data_is_not_a_pattern() -> None:
    schema = {"properties": {"a": {"enum": [{"pattern": r"(a)\1"}], "default": {"pattern": "("}}}}
    assert pattern_problem(schema) is None


PATTERNS = st.sampled_from(["^a", "b$", "[0-9]+", "^x.z$", "a|b", "^$", "é"])
KEYS = st.text(alphabet="abxz09é", max_size=4)


@settings(max_examples=300, deadline=None)
@given(
    pattern=PATTERNS,
    properties=st.dictionaries(KEYS, st.integers(0, 2) | st.text("ab0", max_size=3), max_size=4),
    additional=st.booleans(),
    named=st.lists(KEYS, max_size=2),
)
def test_re2_keywords_agree_with_jsonschema(
    pattern: str, properties: dict[str, Any], additional: bool, named: list[str]
) -> None:
    schema = {
        "type": "object",
        "properties": {name: {"type": "integer"} for name in named},
        "patternProperties": {pattern: {"type": "integer"}},
        "additionalProperties": additional,
        "propertyNames": {"pattern": "^[a-z0-9é]*$"},
    }
    for instance in (properties, {"v": "".join(map(str, properties.values()))}):
        expected = Draft202012Validator(schema).is_valid(instance)
        assert SchemaValidator(schema).is_valid(instance) is expected
        assert PayloadValidator(schema).check(instance) is expected
        for string in map(str, properties):
            string_schema = {"type": "string", "pattern": pattern}
            assert SchemaValidator(string_schema).is_valid(string) is Draft202012Validator(
                string_schema
            ).is_valid(string)


def _define(admin: Admin, tenant: str, schema: dict[str, Any]) -> Any:
    return admin.http.post(
        f"/api/admin/catalog/{tenant}/types",
        json={
            "name": "acme.code.entered",
            "description": "A code was entered",
            "audiences": ["permission:widgets.read"],
            "schema": schema,
        },
    )


@pytest.mark.parametrize(
    ("pattern", "field"),
    [
        (r"(a)\1", "/versions/0/schema/properties/code/pattern"),
        ("(?=a)", "/versions/0/schema/properties/code/pattern"),
    ],
)
def test_unsupported_patterns_are_422_at_definition(
    server: ServerProcess, admin: Admin, pattern: str, field: str
) -> None:
    tenant = admin.tenant()
    schema = {"type": "object", "properties": {"code": {"type": "string", "pattern": pattern}}}
    response = _define(admin, tenant, schema)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field
    assert "linear-time" in response.json()["detail"]
    assert admin.http.get(f"/api/admin/catalog/{tenant}/types/acme.code.entered").status_code == 404


@pytest.mark.parametrize(("pattern", "text"), CATASTROPHIC[:3])
def test_publish_answers_fast_against_a_catastrophic_pattern(
    server: ServerProcess, admin: Admin, pattern: str, text: str
) -> None:
    tenant = admin.tenant()
    schema = {"type": "object", "properties": {"code": {"type": "string", "pattern": pattern}}}
    assert _define(admin, tenant, schema).status_code == 201
    event = {"type": "acme.code.entered", "tenantId": tenant, "data": {"code": text}}
    started = time.monotonic()
    refused = admin.publish(event)
    assert refused.status_code == 422, refused.text
    assert refused.json()["field"] == "/data/code"
    accepted = admin.publish({**event, "data": {"code": "aaaa"}})
    assert accepted.status_code == 202, accepted.text
    assert time.monotonic() - started < 2.0
