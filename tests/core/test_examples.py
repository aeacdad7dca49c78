"""The Integration Manager's example envelopes (tidings.core.examples) and
readable conditions: every shipped type's example passes its own schema, so
the page never shows an example the server would refuse."""

from __future__ import annotations

import pytest

from tidings.catalog import load_catalog
from tidings.core.catalog import EventType
from tidings.core.examples import example_envelope, example_value
from tidings.http.manager.rules import describe_conditions

CATALOG = load_catalog()


@pytest.mark.parametrize("event_type", list(CATALOG), ids=lambda t: t.name)
def test_every_shipped_example_is_valid_for_its_latest_schema(event_type: EventType) -> None:
    envelope = example_envelope(event_type, event_type.latest, "acme")
    event_type.validate_data(envelope["data"], event_type.latest)  # raises when invalid
    assert envelope["type"] == event_type.name and envelope["tenantId"] == "acme"
    assert envelope["schema"] == event_type.ref(event_type.latest)


def test_examples_follow_the_schema_keywords() -> None:
    schema = {
        "type": "object",
        "properties": {
            "state": {"enum": ["OPEN", "CLOSED"]},
            "kind": {"const": "x"},
            "count": {"type": "integer", "minimum": 3},
            "tags": {"type": "array", "items": {"type": "string"}},
            "maybe": {"type": ["null", "boolean"]},
            "createdAt": {"type": "string", "format": "date-time"},
            "userId": {"type": "string"},
        },
    }
    value = example_value(schema)
    assert value["state"] == "OPEN" and value["kind"] == "x" and value["count"] == 3
    assert value["tags"] == ["tags"] and value["maybe"] is True
    assert value["createdAt"].endswith("Z") and value["userId"] == "user-1001"


def test_conditions_read_as_one_line() -> None:
    spec = {
        "all": [
            {"path": "data.priority", "op": "eq", "value": "HIGH"},
            {
                "any": [
                    {"path": "data.score", "op": "gte", "value": 80},
                    {"not": {"path": "data.campaignId", "op": "exists"}},
                ]
            },
            {"path": "data.region", "op": "in", "value": ["eu", "me"]},
        ]
    }
    assert describe_conditions(spec) == (
        "data.priority = HIGH and (data.score ≥ 80 or not data.campaignId exists) "
        'and data.region in ["eu","me"]'
    )
    assert describe_conditions({"all": []}) == "" and describe_conditions(None) == ""
    assert describe_conditions({"any": []}) == "never"
    assert describe_conditions({"path": "data.x", "op": "exists", "value": False}) == (
        "data.x is absent"
    )
