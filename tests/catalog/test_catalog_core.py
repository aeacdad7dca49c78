"""The pure catalog core: the fields notation, compiled validators (pinned
to jsonschema by property tests), compatibility, conventions, audiences."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from schema_strategies import json_values, valid
from tidings.catalog import load_catalog
from tidings.core.catalog import Catalog, CatalogError, EventType
from tidings.core.catalog_packs import build_event_type, pack_types
from tidings.core.compat import compare
from tidings.core.conventions import check_pack, check_type
from tidings.core.envelope import parse_event
from tidings.core.fields import FieldsError, fields_schema, infer_type, parse_fields
from tidings.core.validation import FORMAT_CHECKER, PayloadValidator, compile_check
from tidings.errors import InvalidInput
from tidings.services.auth import Principal
from tidings.services.ingest import Ingest

SHIPPED = load_catalog()

# -- the fields notation --------------------------------------------------


def test_seed_notation_compiles_to_required_and_optional_fields() -> None:
    schema = fields_schema(
        "tenantId, ticketId, previousStatusId, newStatusId, actorUserId, changedAt, reason?"
    )
    assert schema["required"] == [
        "tenantId",
        "ticketId",
        "previousStatusId",
        "newStatusId",
        "actorUserId",
        "changedAt",
    ]
    assert schema["properties"]["changedAt"] == {"type": "string", "format": "date-time"}
    assert schema["properties"]["ticketId"] == {"type": "string", "minLength": 1}
    assert schema["properties"]["reason"] == {"type": "string"}
    Draft202012Validator.check_schema(schema)


def test_shapes_enums_arrays_objects_and_alternatives() -> None:
    schema = fields_schema(
        "visibility(public|internal), to[], cc[]?, applications[{invoiceId, amountApplied}], "
        "summary{created:number, skipped?:number}, clientId/companyId, outputs[]?:object, "
        "newTicketIds, billable, minutes, dueDate?, email?"
    )
    props = schema["properties"]
    assert props["visibility"] == {"type": "string", "enum": ["public", "internal"]}
    assert props["to"] == {"type": "array", "items": {"type": "string"}}
    assert "cc" not in schema["required"]
    assert props["applications"]["items"]["required"] == ["invoiceId", "amountApplied"]
    assert props["applications"]["items"]["properties"]["amountApplied"] == {"type": "number"}
    assert props["summary"]["required"] == ["created"]
    assert props["outputs"] == {"type": "array", "items": {"type": "object"}}
    assert props["newTicketIds"] == {"type": "array", "items": {"type": "string", "minLength": 1}}
    assert props["billable"] == {"type": "boolean"} and props["minutes"] == {"type": "number"}
    assert props["dueDate"]["format"] == "date" and props["email"]["format"] == "email"
    assert schema["anyOf"] == [{"required": ["clientId"]}, {"required": ["companyId"]}]
    assert "clientId" not in schema["required"] and "companyId" in props


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("createdAt", "date-time"),
        ("daysOverdue", "number"),
        ("amountDue", "number"),
        ("attachmentsCount", "number"),
        ("durationMs", "number"),
        ("sizeBytes", "number"),
        ("retryable", "boolean"),
        ("isPrimary", "boolean"),
        ("status", "string"),
        ("phoneNumber", "string"),
        ("daysheet", "string"),
        ("At", "string"),
    ],
)
def test_type_inference(name: str, expected: str) -> None:
    schema = infer_type(name)
    assert schema.get("format", schema["type"]) == expected


@pytest.mark.parametrize(
    ("text", "column"),
    [
        ("a, , b", 4),
        ("a(b|", 5),
        ("a, a", 4),
        ("a:float", 3),
        ("a[{}]", 4),
        ("1a", 1),
        ("a/a", 1),
    ],
)
def test_unreadable_notation_names_the_column(text: str, column: int) -> None:
    with pytest.raises(FieldsError) as info:
        parse_fields(text)
    assert info.value.column == column


# -- validators -----------------------------------------------------------


def test_validation_error_names_pointer_and_rule() -> None:
    event_type = build_event_type(
        "X_CHANGED",
        {"versions": [{"fields": "tenantId, items[{id, qty:number}], doneAt?"}]},
        pack="p",
        defaults={},
    )
    with pytest.raises(InvalidInput) as info:
        event_type.validate_data({"tenantId": "t"}, 1)
    assert info.value.field == "/data/items"
    assert info.value.extra["rule"] == "required"
    assert info.value.extra["schema"] == "payload.XChanged.v1"
    with pytest.raises(InvalidInput) as info:
        event_type.validate_data({"tenantId": "t", "items": [{"id": "a", "qty": "many"}]}, 1)
    assert info.value.field == "/data/items/0/qty"
    assert info.value.extra["rule"] == "type"
    with pytest.raises(InvalidInput) as info:
        event_type.validate_data({"tenantId": "t", "items": [], "doneAt": "tomorrow"}, 1)
    assert (info.value.field, info.value.extra["rule"]) == ("/data/doneAt", "format")


def test_every_shipped_schema_compiles_to_the_fast_path() -> None:
    slow = [
        t.ref(v)
        for t in SHIPPED
        for v in t.versions
        if not PayloadValidator(t.versions[v]).compiled
    ]
    assert slow == []


SCHEMAS = [t.versions[v] for t in SHIPPED for v in t.versions]


@settings(max_examples=300, deadline=None)
@given(schema=st.sampled_from(SCHEMAS), data=st.data())
def test_the_compiled_check_agrees_with_jsonschema(schema: dict[str, Any], data: Any) -> None:
    reference = Draft202012Validator(schema, format_checker=FORMAT_CHECKER)
    fast = compile_check(schema)
    assert fast is not None
    good = data.draw(valid(schema))
    assert reference.is_valid(good) and fast(good)
    # Break it: a random value for a random property, or random JSON.
    mutated: Any = dict(good)
    props = list(schema.get("properties", {}))
    if props and data.draw(st.booleans()):
        mutated[data.draw(st.sampled_from(props))] = data.draw(json_values)
    else:
        mutated = data.draw(json_values)
    assert fast(mutated) == reference.is_valid(mutated)


KEYWORD_SCHEMAS = st.sampled_from(
    [
        {"type": "integer", "minimum": 0, "exclusiveMaximum": 10},
        {"type": ["string", "null"], "maxLength": 3, "pattern": "^a"},
        {"enum": ["a", None]},
        {"const": "x"},
        {"type": "array", "minItems": 1, "maxItems": 2, "items": {"type": "number"}},
        {"type": "object", "additionalProperties": {"type": "boolean"}, "properties": {"a": {}}},
        {"type": "object", "additionalProperties": False, "required": ["a"]},
        {"allOf": [{"type": "number"}, {"minimum": 1.5}]},
        {"type": "string", "format": "date"},
        {"type": "string", "format": "email"},
        {"type": "string", "format": "uuid"},
    ]
)


@settings(max_examples=300, deadline=None)
@given(schema=KEYWORD_SCHEMAS, value=json_values)
def test_each_compiled_keyword_agrees_with_jsonschema(schema: dict[str, Any], value: Any) -> None:
    reference = Draft202012Validator(schema, format_checker=FORMAT_CHECKER)
    fast = compile_check(schema)
    assert fast is not None
    assert fast(value) == reference.is_valid(value)


def test_schemas_outside_the_subset_fall_back_to_jsonschema() -> None:
    validator = PayloadValidator({"type": "object", "oneOf": [{"required": ["a"]}, {}]})
    assert not validator.compiled
    assert not validator.check({"a": 1})  # matches both branches of oneOf
    assert validator.violations({"a": 1})[0].rule == "oneOf"


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("2025-11-06T09:00:00Z", True),
        ("2025-11-06T09:00:00.123456789+02:00", True),
        ("2025-11-06 09:00:00z", True),
        ("2025-11-06T09:00:00", False),  # no zone
        ("2025-13-06T09:00:00Z", False),
        ("yesterday", False),
    ],
)
def test_date_time_format(value: str, ok: bool) -> None:
    assert PayloadValidator({"type": "string", "format": "date-time"}).check(value) is ok


# -- compatibility --------------------------------------------------------


def _fields(text: str) -> dict[str, Any]:
    return fields_schema(text)


@pytest.mark.parametrize(
    ("old", "new", "backward", "forward"),
    [
        ("a, b?", "a, b?, c?", True, True),
        ("a, b?", "a, b?, c", False, True),
        ("a, b", "a, b?", True, False),
        ("a, b?", "a, b", False, True),
        ("a, b?", "a", True, True),
        ("a, b", "a", True, False),
        ("a, n:integer", "a, n:number", True, False),
        ("a, n:number", "a, n:string", False, False),
        ("a, s(x|y)", "a, s(x|y|z)", True, False),
        ("a, s(x|y)", "a, s(x)", False, True),
        ("a, s", "a, s:datetime", False, True),
        ("a, items[{x}]", "a, items[{x, y}]", False, True),
    ],
)
def test_compatibility(old: str, new: str, backward: bool, forward: bool) -> None:
    report = compare(_fields(old), _fields(new))
    assert (report.backward, report.forward) == (backward, forward), report.to_json()
    assert report.compatible is backward


def test_closed_objects_and_unknown_keywords_are_conservative() -> None:
    open_, closed = {"type": "object"}, {"type": "object", "additionalProperties": False}
    assert not compare(open_, closed).backward
    assert not compare({"type": "object", "oneOf": [{}]}, {"type": "object"}).compatible
    assert compare({"type": "object"}, {"type": "object", "title": "x"}).changes == ()


def test_shipped_versions_are_backward_compatible() -> None:
    for event_type in SHIPPED:
        for number in sorted(event_type.versions)[1:]:
            report = compare(event_type.versions[number - 1], event_type.versions[number])
            assert report.compatible, (event_type.name, report.to_json())


# -- conventions ----------------------------------------------------------


def _pack(naming: str, conventions: list[str], types: dict[str, Any]) -> dict[str, Any]:
    return {"pack": "p", "naming": naming, "conventions": conventions, "types": types}


@pytest.mark.parametrize(
    ("naming", "conventions", "types", "message"),
    [
        ("dotted", [], {"TICKET_CREATED": {"versions": [{"fields": "a"}]}}, "naming is dotted"),
        ("screaming_snake", [], {"a.b": {"versions": [{"fields": "a"}]}}, "naming"),
        ("dotted", ["tenant-id"], {"a.created": {"versions": [{"fields": "a"}]}}, "tenantId"),
        (
            "dotted",
            ["transitions"],
            {"a.status_changed": {"versions": [{"fields": "previousStatus, status"}]}},
            "pairs",
        ),
        ("dotted", ["transitions"], {"a.changed": {"versions": [{"fields": "x"}]}}, "previousX"),
        ("dotted", ["updates"], {"a.updated": {"versions": [{"fields": "x"}]}}, "changes"),
        ("dotted", [], {"a.b": {}}, "at least one version"),
        ("snake", [], {"a.b": {"versions": [{"fields": "a"}]}}, "naming must be"),
        ("dotted", ["typo"], {"a.b": {"versions": [{"fields": "a"}]}}, "conventions"),
    ],
)
def test_conventions(
    naming: str, conventions: list[str], types: dict[str, Any], message: str
) -> None:
    pack = _pack(naming, conventions, types)
    with pytest.raises(CatalogError) as info:
        check_pack(pack, pack_types(pack))
    assert message in str(info.value)
    assert info.value.location[:1] in (("types",), ("naming",), ("conventions",))


def test_conventions_accept_what_the_seeds_do() -> None:
    pack = _pack(
        "screaming_snake",
        ["tenant-id", "transitions", "updates"],
        {
            "TAG_DEFINITION_UPDATED": {
                "versions": [{"fields": "tenantId, previousName?, newName?"}]
            },
            "TICKET_TAGS_CHANGED": {
                "transition": False,
                "versions": [{"fields": "tenantId, addedTagIds?, removedTagIds?"}],
            },
            "TICKET_UNASSIGNED": {"versions": [{"fields": "tenantId, previousAssigneeId"}]},
        },
    )
    check_pack(pack, pack_types(pack))


def test_model_errors_carry_a_location() -> None:
    for spec, where in [
        ({"versions": [{"fields": "a(", "x": 1}]}, ("types", "a.b", "versions", 0, "x")),
        ({"versions": [{"fields": "a("}]}, ("types", "a.b", "versions", 0, "fields")),
        ({"versions": [{"schema": {"type": "array"}}]}, ("types", "a.b", "versions", 0, "schema")),
        (
            {"audiences": ["everyone"], "versions": [{"fields": "a"}]},
            ("types", "a.b", "audiences", 0),
        ),
        ({"colour": "red"}, ("types", "a.b", "colour")),
        (
            {"versions": [{"fields": "a", "ref": "payload.Nope.v1"}]},
            ("types", "a.b", "versions", 0, "ref"),
        ),
    ]:
        with pytest.raises(CatalogError) as info:
            build_event_type("a.b", spec, pack="p", defaults={})
        assert info.value.location == where, (spec, info.value)


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ({"module": {"a": 1}}, "module must be a string"),
        ({"entityType": ["x"]}, "entityType must be a string"),
        ({"versions": [{"schema": {"type": "object", "$ref": "https://x.example/s"}}]}, "$ref"),
        ({"versions": [{"schema": {"properties": {"a": {"$ref": "#/$defs/a"}}}}]}, "$ref"),
        ({"versions": [{"schema": {"properties": {"a": {"$dynamicRef": "#a"}}}}]}, "$dynamicRef"),
        ({"versions": [{"schema": {"type": "object", "properties": 5}}]}, "schema is invalid"),
        ({"versions": [{"fields": "a", "schema": {}}]}, "exactly one"),
    ],
)
def test_entries_are_checked(spec: dict[str, Any], words: str) -> None:
    with pytest.raises(CatalogError) as info:
        build_event_type("a.b", {"versions": [{"fields": "a"}], **spec}, pack="p", defaults={})
    assert words in str(info.value)


def test_local_references_are_allowed() -> None:
    schema = {"$defs": {"id": {"type": "string"}}, "properties": {"a": {"$ref": "#/$defs/id"}}}
    event_type = build_event_type("a.b", {"versions": [{"schema": schema}]}, pack="p", defaults={})
    with pytest.raises(InvalidInput) as info:
        event_type.validate_data({"a": 1}, 1)
    assert info.value.field == "/data/a"


def test_tenant_types_cannot_shadow() -> None:
    extra = build_event_type(
        "TICKET_CREATED", {"versions": [{"fields": "a"}]}, pack="t", defaults={}
    )
    with pytest.raises(CatalogError):
        SHIPPED.with_types([extra])
    mine = build_event_type(
        "acme.thing.made", {"versions": [{"fields": "a"}]}, pack="t", defaults={}
    )
    merged = SHIPPED.with_types([mine])
    assert "acme.thing.made" in merged and "acme.thing.made" not in SHIPPED
    assert len(merged) == len(SHIPPED) + 1
    with pytest.raises(CatalogError):
        check_type(
            build_event_type(
                "asyncapi.json", {"versions": [{"fields": "a"}]}, pack="t", defaults={}
            ),
            naming=None,
        )


# -- publish preparation: versions, audiences, unscoped, tenant -------------


def _ingest(catalog: Catalog) -> Ingest:
    return Ingest(lambda _tenant: catalog, max_event_bytes=65536)


ADMIN = Principal(kind="admin", scopes=frozenset({"admin", "publish"}))


def test_older_versions_stay_accepted_and_the_default_is_the_latest() -> None:
    v1 = "a, old?"
    v2 = "a, old?, extra?:integer"
    event_type = build_event_type(
        "x.thing.made",
        {"audiences": ["permission:x"], "versions": [{"fields": v1}, {"fields": v2}]},
        pack="p",
        defaults={},
    )
    ingest = _ingest(Catalog([event_type]))
    event = {"type": "x.thing.made", "tenantId": "t", "data": {"a": "1", "extra": "no"}}
    with pytest.raises(InvalidInput) as info:
        ingest.prepare(event, ADMIN)
    assert info.value.field == "/data/extra"
    prepared = ingest.prepare({**event, "schema": "payload.XThingMade.v1"}, ADMIN)
    assert prepared.event.schema == "payload.XThingMade.v1"
    assert (
        ingest.prepare({**event, "data": {"a": "1"}}, ADMIN).event.schema == "payload.XThingMade.v2"
    )
    with pytest.raises(InvalidInput) as info:
        ingest.prepare({**event, "schema": "payload.XThingMade.v3"}, ADMIN)
    assert info.value.field == "/schema"


def test_default_audiences_come_from_the_payload_and_unscoped_is_refused() -> None:
    ingest = _ingest(SHIPPED)
    prepared = ingest.prepare(
        {
            "type": "course.completed",
            "tenantId": "t",
            "data": {"courseId": "c1", "userId": "u7", "completedAt": "2025-01-01T00:00:00Z"},
        },
        ADMIN,
    )
    assert prepared.event.audiences == ("permission:lms.read", "user:u7")
    personal = build_event_type(
        "x.only.personal",
        {"audiences": ["user:{data.userId}"], "versions": [{"fields": "userId?"}]},
        pack="p",
        defaults={},
    )
    none = build_event_type("x.no.rules", {"versions": [{"fields": "a?"}]}, pack="p", defaults={})
    ingest = _ingest(Catalog([personal, none]))
    for event in (
        {"type": "x.only.personal", "tenantId": "t", "data": {}},
        {"type": "x.no.rules", "tenantId": "t"},
    ):
        with pytest.raises(InvalidInput) as info:
            ingest.prepare(event, ADMIN)
        assert info.value.field == "/audiences"
    # explicit audiences still work for a type without rules
    assert ingest.prepare({"type": "x.no.rules", "tenantId": "t", "audiences": ["role:a"]}, ADMIN)


def test_payload_tenant_must_be_the_events_tenant() -> None:
    ingest = _ingest(SHIPPED)
    data = {
        "tenantId": "other",
        "clientId": "c",
        "archivedByUserId": "u",
        "archivedAt": "2025-01-01T00:00:00Z",
    }
    with pytest.raises(InvalidInput) as info:
        ingest.prepare({"type": "CLIENT_ARCHIVED", "tenantId": "t", "data": data}, ADMIN)
    assert info.value.field == "/data/tenantId"
    ok = ingest.prepare(
        {"type": "CLIENT_ARCHIVED", "tenantId": "t", "data": {**data, "tenantId": "t"}}, ADMIN
    )
    assert ok.event.audiences == ("permission:crm.read",)


def test_deactivated_types_are_refused() -> None:
    off = build_event_type(
        "x.off", {"active": False, "versions": [{"fields": "a?"}]}, pack="p", defaults={}
    )
    with pytest.raises(InvalidInput) as info:
        _ingest(Catalog([off])).prepare(
            {"type": "x.off", "tenantId": "t", "audiences": ["role:a"]}, ADMIN
        )
    assert "deactivated" in info.value.detail


def test_template_values_never_widen() -> None:
    event_type: EventType = SHIPPED.get("notification.created")
    draft = parse_event({"type": "notification.created", "tenantId": "t", "data": {"userId": ""}})
    assert event_type.resolve_audiences(draft) == ()
