"""The CloudEvents mapping (core/cloudevents.py), with the SDK writing and
reading every byte: native -> CloudEvent (structured and binary) ->
native is the identity on every mapped member; attributes the table does
not know are refused by name."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from cloudevents.core.bindings.http import HTTPMessage, from_http
from cloudevents.core.v1.event import CloudEvent
from hypothesis import given, settings
from hypothesis import strategies as st

from tidings.core import cloudevents
from tidings.core.envelope import Event, EventDraft, iso_utc, now_iso, parse_event
from tidings.errors import InvalidInput

INT64 = st.integers(-(2**63), 2**63 - 1)
json_leaves = (
    st.none()
    | st.booleans()
    | INT64
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
json_values = st.recursive(
    json_leaves,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
objects = st.dictionaries(st.text(max_size=6), json_values, max_size=4)
names = st.from_regex(r"[a-z][a-z0-9_.\-]{0,20}", fullmatch=True)
texts = st.text(min_size=1, max_size=40)
zones = st.sampled_from(
    [UTC, timezone(timedelta(hours=2)), timezone(-timedelta(hours=5, minutes=30))]
)
moments = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=zones
)
# A stored timestamp: the hub's own form (milliseconds, Z) or a producer's
# with an offset and perhaps microseconds, as the mapping writes it back.
timestamps = st.one_of(
    moments.map(lambda m: iso_utc(round(m.timestamp(), 3))),
    moments.map(cloudevents.timestamp_text),
)
audience_sets = st.lists(
    st.from_regex(r"(user|role|permission|resource):[A-Za-z0-9_.\-@:/]{1,20}", fullmatch=True),
    min_size=1,
    max_size=4,
    unique=True,
).map(tuple)


@st.composite
def stored_events(draw: st.DrawFn) -> Event:
    return Event(
        id=draw(st.from_regex(r"[A-Za-z0-9_.:\-]{1,40}", fullmatch=True)),
        type=draw(names),
        tenant_id=draw(st.from_regex(r"[A-Za-z0-9_.\-]{1,20}", fullmatch=True)),
        entity_type=draw(st.none() | texts),
        entity_id=draw(st.none() | texts),
        action=draw(st.from_regex(r"[A-Z][A-Z0-9_]{0,15}", fullmatch=True)),
        timestamp=draw(timestamps),
        actor=draw(st.none() | objects),
        metadata=draw(objects),
        data=draw(objects),
        audiences=draw(audience_sets),
        schema=draw(st.from_regex(r"payload\.[A-Z][A-Za-z]{0,10}\.v[1-9]", fullmatch=True)),
        position=draw(st.integers(1, 2**40)),
    )


MAPPED = (
    "id",
    "type",
    "tenant_id",
    "entity_type",
    "entity_id",
    "action",
    "timestamp",
    "actor",
    "metadata",
    "data",
    "audiences",
    "schema",
)


def _unplaced(wire: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in wire.items() if k != "position"}


def _same(event: Event, draft: EventDraft) -> None:
    for name in MAPPED:
        assert getattr(draft, name) == getattr(event, name), name


@settings(max_examples=100, deadline=None)
@given(stored_events())
def test_native_to_structured_and_back_is_the_identity(event: Event) -> None:
    body = cloudevents.structured_json(_unplaced(event.to_wire()))
    parsed, sent = cloudevents.read_structured(body)
    _same(event, parse_event(cloudevents.to_envelope(parsed, sent)))


@settings(max_examples=100, deadline=None)
@given(stored_events())
def test_native_to_binary_and_back_is_the_identity(event: Event) -> None:
    message = cloudevents.binary_message(_unplaced(event.to_wire()))
    headers = {name.lower(): value for name, value in message.headers.items()}
    assert all(value.isascii() and "\n" not in value for value in headers.values())
    parsed = cloudevents.read_binary(headers, message.body)
    _same(event, parse_event(cloudevents.to_envelope(parsed, cloudevents.binary_sent(headers))))


@settings(max_examples=30, deadline=None)
@given(stored_events())
def test_egress_carries_the_position_and_a_tenant_source(event: Event) -> None:
    wire = event.to_wire()
    attributes = orjson.loads(cloudevents.structured_json(wire))
    assert attributes["position"] == event.position
    assert attributes["source"] == f"/tenants/{event.tenant_id}"
    assert (
        attributes["specversion"] == "1.0" and attributes["datacontenttype"] == "application/json"
    )
    binary = cloudevents.binary_message(wire)  # the SDK reads both modes back alike
    structured = HTTPMessage(
        {"content-type": cloudevents.STRUCTURED}, cloudevents.structured_json(wire)
    )
    read = [from_http(m, cloudevents.FORMAT, CloudEvent) for m in (binary, structured)]
    assert read[0].get_attributes()["position"] == str(event.position)
    assert read[0].get_data() == read[1].get_data() == event.data


def test_the_hubs_own_timestamps_come_back_exactly() -> None:
    stamp = now_iso()
    assert cloudevents.timestamp_text(cloudevents.parse_time(stamp)) == stamp


def _event(**attributes: Any) -> CloudEvent:
    base = {"id": "e1", "type": "qms.car.updated", "source": "urn:x", "specversion": "1.0"}
    return CloudEvent({**base, **attributes}, {"x": 1})


@pytest.mark.parametrize(
    ("attributes", "field"),
    [
        ({"position": 4}, "/position"),
        ({"colour": "red"}, "/colour"),
        ({"actor": "[1]"}, "/actor"),
        ({"metadata": "{"}, "/metadata"),
        ({"tenantid": "a", "source": "/tenants/b"}, "/source"),
        ({"datacontenttype": "application/xml"}, "/datacontenttype"),
    ],
)
def test_what_the_table_does_not_map_is_refused_by_name(
    attributes: dict[str, Any], field: str
) -> None:
    event = _event(**attributes)
    with pytest.raises(InvalidInput) as caught:
        cloudevents.to_envelope(event, event.get_attributes().keys())
    assert caught.value.field == field


def test_required_attributes_the_sdk_would_fill_in_are_required() -> None:
    body = b'{"type": "qms.car.updated", "source": "urn:x", "specversion": "1.0"}'
    parsed, sent = cloudevents.read_structured(body)
    with pytest.raises(InvalidInput) as caught:
        cloudevents.to_envelope(parsed, sent)
    assert caught.value.field == "/id"


def test_a_source_names_the_tenant_and_no_time_leaves_the_hubs() -> None:
    body = b'{"id": "e", "type": "t", "source": "/tenants/acme", "specversion": "1.0"}'
    parsed, sent = cloudevents.read_structured(body)
    envelope = cloudevents.to_envelope(parsed, sent)
    assert envelope["tenantId"] == "acme" and "timestamp" not in envelope


@pytest.mark.parametrize(
    ("native", "structured", "binary"),
    [
        ("/entityId", "/subject", "ce-subject"),
        ("/timestamp", "/time", "ce-time"),
        ("/schema", "/dataschema", "ce-dataschema"),
        ("/data/a/0", "/data/a/0", "/a/0"),
        ("/audiences/1", "/audiences/1", "ce-audiences/1"),
        ("", "", ""),
    ],
)
def test_error_fields_name_the_cloudevents_attribute(
    native: str, structured: str, binary: str
) -> None:
    assert cloudevents.cloudevent_field(native) == structured
    assert cloudevents.binary_field(structured) == binary
    assert cloudevents.cloudevent_field("/3" + native, batch=True) == "/3" + structured
