"""Envelope parsing names the offending field; type patterns; redaction."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tidings.core.audience import UserRecord, Viewer
from tidings.core.envelope import parse_event
from tidings.core.patterns import TypeFilter
from tidings.core.redaction import FULL, carried, redact, variant_for
from tidings.errors import InvalidInput


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([], ""),
        ({}, "/type"),
        ({"type": 5}, "/type"),
        ({"type": "a b"}, "/type"),
        ({"type": "qms.car.updated"}, "/tenantId"),
        ({"type": "x", "tenantId": "t", "audiences": "user:a"}, "/audiences"),
        ({"type": "x", "tenantId": "t", "audiences": ["user:a", "bad"]}, "/audiences/1"),
        ({"type": "x", "tenantId": "t", "timestamp": "yesterday"}, "/timestamp"),
        ({"type": "x", "tenantId": "t", "timestamp": "2024-05-16T14:23:41"}, "/timestamp"),
        ({"type": "x", "tenantId": "t", "data": [1]}, "/data"),
        ({"type": "x", "tenantId": "t", "actor": {"userId": 5}}, "/actor/userId"),
        ({"type": "x", "tenantId": "t", "action": "created"}, "/action"),
        ({"type": "x", "tenantId": "t", "surprise": 1}, "/surprise"),
        ({"type": "x", "tenantId": "t\n"}, "/tenantId"),
    ],
)
def test_bad_envelopes_name_the_field(body: object, field: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_event(body)
    assert info.value.field == field


def test_tenant_bound_credentials_supply_the_tenant() -> None:
    assert parse_event({"type": "x"}, default_tenant="t1").tenant_id == "t1"


@given(st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=5))
def test_the_parser_never_raises_anything_but_invalid_input(body: dict) -> None:
    with contextlib.suppress(InvalidInput):
        parse_event(body)


def test_type_filters_are_globs() -> None:
    f = TypeFilter.parse("qms.*, TICKET_*,tasks.assignment.created")
    assert f.matches("qms.car.updated") and f.matches("TICKET_CREATED")
    assert f.matches("tasks.assignment.created") and not f.matches("tasks.assignment.updated")
    assert TypeFilter.parse(None).matches("anything")
    with pytest.raises(InvalidInput):
        TypeFilter.parse("qms.*;DROP")


_KEYS = st.sampled_from(["a", "b", "c"])
_TREES = st.recursive(
    st.one_of(st.none(), st.integers(0, 3), st.text(max_size=2)),
    lambda inner: st.dictionaries(_KEYS, inner, max_size=3),
    max_leaves=8,
)


@given(
    st.dictionaries(st.sampled_from(["data", "metadata"]), _TREES, max_size=2),
    st.dictionaries(
        st.lists(_KEYS, min_size=1, max_size=3).map(lambda p: ".".join(["data", *p])),
        st.sampled_from(["p1", "p2"]),
        max_size=3,
    ),
    st.frozensets(st.sampled_from(["p1", "p2"])),
)
def test_sensitive_paths_an_event_does_not_carry_change_no_redaction(
    wire: dict[str, Any], sensitive: dict[str, str], held: frozenset[str]
) -> None:
    """The hub shares one frame among all viewers when an event carries
    none of its type's sensitive fields: that must be exactly redaction."""
    kept = carried(wire, sensitive)
    assert set(kept) <= set(sensitive)
    assert redact(wire, kept, held) == redact(wire, sensitive, held)
    if not kept:
        assert redact(wire, sensitive, held) == wire


def test_redaction_removes_only_fields_the_viewer_may_not_see() -> None:
    sensitive = {"data.email": "pii.read", "metadata.phone": "pii.phone"}
    wire = {"data": {"email": "a@b", "x": 1}, "metadata": {"phone": "1", "y": 2}}
    plain = Viewer.for_user(UserRecord("t", "u", "r"), {})
    partial = Viewer.for_user(UserRecord("t", "u", "r", grants=frozenset({"pii.read"})), {})
    full = Viewer.for_user(
        UserRecord("t", "u", "r", grants=frozenset({"pii.read", "pii.phone"})), {}
    )
    assert redact(wire, sensitive, variant_for(plain, sensitive)) == {
        "data": {"x": 1},
        "metadata": {"y": 2},
    }
    assert redact(wire, sensitive, variant_for(partial, sensitive))["data"] == {
        "email": "a@b",
        "x": 1,
    }
    assert variant_for(full, sensitive) == FULL
    assert wire["data"] == {"email": "a@b", "x": 1}  # never mutated
