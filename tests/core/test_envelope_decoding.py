"""The fast envelope decoder (msgspec) against the exact parser: it never
accepts what parse_event refuses, and reads what it accepts the same way;
over HTTP, errors and results are the same whichever path a body takes."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tidings.catalog import load_catalog
from tidings.core.envelope import ENVELOPE_FIELDS, EventDraft, decode_drafts, parse_event
from tidings.errors import InvalidInput
from tidings.services.auth import Principal
from tidings.services.ingest import Ingest

KNOWN = sorted(ENVELOPE_FIELDS)
SAMPLES = [
    "qms.car.updated",
    "x",
    "1bad",
    "a b",
    "t\n",
    "",
    " ",
    "a" * 300,
    "é",
    "ok-name_1.2",
    "evt:1",
    "UPDATED",
    "bad action",
    "2024-05-16T14:23:41.123Z",
    "2024-05-16T14:23:41",
    "permission:qms.read",
    "user:u1",
    "nope::",
    "payload.QmsCarUpdated.v1",
]
strings = st.one_of(st.sampled_from(SAMPLES), st.text(max_size=12))
scalars = st.one_of(
    st.none(),
    strings,
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
)
values = st.one_of(
    scalars,
    st.lists(strings, max_size=3),
    st.dictionaries(st.sampled_from(["userId", "name", "x", "seq"]), scalars, max_size=3),
)
actors = st.dictionaries(
    st.sampled_from(["userId", "name", "department", "actorType", "x"]), scalars, max_size=3
)
GOOD = {  # a value parse_event accepts, per field
    "id": st.sampled_from(["evt_1", "a:b.c-d"]),
    "type": st.sampled_from(["qms.car.updated", "x"]),
    "tenantId": st.just("t1"),
    "entityType": st.sampled_from(["car", "é x"]),
    "entityId": st.sampled_from(["c-1", "42"]),
    "action": st.sampled_from(["UPDATED", "CUSTOM_1"]),
    "timestamp": st.sampled_from(["2024-05-16T14:23:41.123Z", "2024-05-16T14:23:41+02:00"]),
    "actor": st.fixed_dictionaries({}, optional={"userId": st.just("u1"), "x": scalars}),
    "metadata": st.dictionaries(st.text(max_size=3), scalars, max_size=2),
    "data": st.dictionaries(st.text(max_size=3), values, max_size=2),
    "audiences": st.lists(st.sampled_from(["permission:qms.read", "user:u1"]), max_size=2),
    "schema": st.sampled_from(["payload.QmsCarUpdated.v1", "anything"]),
}
non_strings = st.one_of(
    st.none(), st.booleans(), st.integers(0, 9), st.lists(st.none(), max_size=1)
)
BAD = {  # values of the right shape, wrong inside (or not)
    **{key: strings for key in KNOWN},
    "actor": st.dictionaries(
        st.sampled_from(["userId", "name", "department", "actorType"]),
        st.one_of(non_strings, strings),
        min_size=1,
        max_size=2,
    ),
    "audiences": st.lists(strings, min_size=1, max_size=3),
    "metadata": values,
    "data": values,
}


good_envelopes = st.fixed_dictionaries(
    {"type": GOOD["type"]}, optional={k: v for k, v in GOOD.items() if k != "type"}
)
FIELDS = [*KNOWN, "extra", "tenant_id"]


def broken(key: str) -> st.SearchStrategy[Any]:
    return st.one_of(BAD.get(key, values), values)


@st.composite
def envelopes(draw: st.DrawFn) -> dict[str, Any]:
    """A good envelope with up to two fields changed, added or removed."""
    envelope = draw(good_envelopes)
    for _ in range(draw(st.integers(min_value=0, max_value=2))):
        key = draw(st.sampled_from(FIELDS))
        if draw(st.booleans()) and key in envelope:
            del envelope[key]
        else:
            envelope[key] = draw(broken(key))
    return envelope


tenants = st.sampled_from([None, "t1"])


def exact(obj: Any, default_tenant: str | None) -> EventDraft | None:
    try:
        return parse_event(obj, default_tenant=default_tenant)
    except InvalidInput:
        return None


def check_one(obj: Any, default: str | None) -> None:
    body = orjson.dumps(obj)
    fast = decode_drafts(body, batch=False, default_tenant=default)
    expected = exact(orjson.loads(body), default)
    if expected is None:
        assert fast is None
    else:
        assert fast is None or fast == [expected]


@settings(max_examples=300)
@given(envelopes(), tenants)
def test_one_envelope_is_read_as_parse_event_reads_it(obj: Any, default: str | None) -> None:
    check_one(obj, default)


@pytest.mark.parametrize("key", FIELDS)
@settings(max_examples=80)
@given(data=st.data(), default=tenants)
def test_each_field_rule_holds_on_the_fast_path(
    key: str, data: st.DataObject, default: str | None
) -> None:
    envelope = data.draw(good_envelopes)
    envelope[key] = data.draw(broken(key))
    check_one(envelope, default)


@settings(max_examples=200)
@given(st.lists(envelopes(), max_size=4), st.booleans(), tenants)
def test_a_batch_is_read_as_parse_event_reads_each(
    objs: list[Any], wrapped: bool, default: str | None
) -> None:
    body = orjson.dumps({"events": objs} if wrapped else objs)
    fast = decode_drafts(body, batch=True, default_tenant=default)
    expected = [exact(obj, default) for obj in objs]
    if any(e is None for e in expected):
        assert fast is None
    else:
        assert fast is None or fast == expected


def test_ordinary_envelopes_take_the_fast_path() -> None:
    envelope = {
        "type": "qms.car.updated",
        "tenantId": "t1",
        "entityId": "car-1",
        "action": "UPDATED",
        "timestamp": "2024-05-16T14:23:41.123Z",
        "actor": {"userId": "u1"},
        "audiences": ["permission:qms.read", "user:u1"],
        "data": {"seq": 1},
    }
    (draft,) = decode_drafts(orjson.dumps(envelope), batch=False, default_tenant=None) or [None]
    assert draft == parse_event(envelope)
    batch = decode_drafts(orjson.dumps({"events": [envelope] * 3}), batch=True, default_tenant=None)
    assert batch == [parse_event(envelope)] * 3


def test_integers_orjson_reads_as_floats_are_read_its_way() -> None:
    """msgspec keeps 2**70 an int; orjson (the exact path) a float. The
    stored event must not depend on which path a body took, and every
    stored integer fits 64 bits (orjson cannot write bigger ones)."""
    catalog = load_catalog()
    ingest = Ingest(lambda _tenant: catalog, max_event_bytes=65536)
    operator = Principal(kind="admin", scopes=frozenset({"admin", "publish"}))
    for big in (2**70, -(2**63) - 1, 2**64):
        envelope = {
            "type": "qms.car.updated",
            "tenantId": "t1",
            "entityId": "car-1",
            "metadata": {"n": big},
        }
        body = json.dumps(envelope).encode()
        assert decode_drafts(body, batch=False, default_tenant=None) is None
        (new,) = ingest.prepare_body(body, operator, batch=False)
        assert new.event.metadata == {"n": float(big)}
        assert orjson.loads(new.body or "")["metadata"] == {"n": float(big)}


def test_integers_that_fit_64_bits_and_long_digit_strings_are_kept_as_given() -> None:
    catalog = load_catalog()
    ingest = Ingest(lambda _tenant: catalog, max_event_bytes=65536)
    operator = Principal(kind="admin", scopes=frozenset({"admin", "publish"}))
    metadata = {"low": -(2**63), "high": 2**64 - 1, "digits": "1" * 40, "f": 1e16}
    envelope = {"type": "qms.car.updated", "tenantId": "t1", "metadata": metadata}
    (new,) = ingest.prepare_body(json.dumps(envelope).encode(), operator, batch=False)
    assert new.event.metadata == metadata
    assert orjson.loads(new.body or "")["metadata"] == metadata
