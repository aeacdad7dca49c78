"""The catalog over real HTTP: listing and filters, one type with its
versions, validation at publish (generated valid payloads per category,
generated and hand-written invalid ones), default audiences, and
tenant-defined types."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schema_strategies import json_values, valid
from support import ADMIN_KEY, Admin, ServerProcess, bearer
from tidings.catalog import load_catalog

CATALOG = load_catalog()
CATEGORIES = sorted({t.category for t in CATALOG})
PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def boss(server: ServerProcess) -> Iterator[Admin]:
    client = Admin(server.url)
    yield client
    client.close()


@pytest.fixture(scope="module")
def tenant(boss: Admin) -> str:
    return boss.tenant()


def publish(boss: Admin, event: dict[str, Any]) -> httpx.Response:
    return boss.http.post("/api/events", json=event)


def history(boss: Admin, tenant: str, types: str) -> list[dict[str, Any]]:
    response = boss.http.get("/api/events/log", params={"tenantId": tenant, "types": types})
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def envelope(tenant: str, event_type: str, data: dict[str, Any], **extra: Any) -> dict[str, Any]:
    schema = CATALOG.get(event_type).versions[1] if event_type in CATALOG else {}
    if "tenantId" in (schema.get("required") or ()):
        data = {**data, "tenantId": tenant}
    return {"type": event_type, "tenantId": tenant, "data": data, **extra}


# -- reading the catalog ------------------------------------------------------


def test_list_and_filter(boss: Admin) -> None:
    everything = boss.http.get("/api/catalog").json()
    assert everything["count"] == len(CATALOG) >= 190
    assert {"type", "module", "category", "description", "audiences", "sensitive", "active"} <= set(
        everything["items"][0]
    )
    lms = boss.http.get("/api/catalog", params={"module": "lms"}).json()["items"]
    assert lms and {i["module"] for i in lms} == {"lms"}
    billing = boss.http.get("/api/catalog", params={"category": "billing"}).json()["items"]
    assert {i["type"] for i in billing} >= {"INVOICE_OVERDUE", "PAYMENT_RECORDED"}
    found = boss.http.get("/api/catalog", params={"q": "overdue"}).json()["items"]
    assert {i["type"] for i in found} >= {"INVOICE_OVERDUE", "training.assignment.overdue"}
    arabic = boss.http.get("/api/catalog", params={"q": "تعليق"}).json()["items"]
    assert [i["type"] for i in arabic] == ["ON_TENANT_SUSPENDED"]
    bad = boss.http.get("/api/catalog", params={"active": "maybe"})
    assert bad.status_code == 422 and bad.headers["content-type"] == PROBLEM


def test_one_type_with_all_its_versions(boss: Admin) -> None:
    body = boss.http.get("/api/catalog/qms.car.updated").json()
    assert [v["version"] for v in body["versions"]] == [1, 2]
    assert [v["schema"] for v in body["versions"]] == [
        "payload.QmsCarUpdated.v1",
        "payload.QmsCarUpdated.v2",
    ]
    assert "escalationLevel" in body["versions"][1]["jsonSchema"]["properties"]
    assert body["versions"][1]["compatibility"]["compatible"] is True
    assert body["versions"][0]["fields"].startswith("carId?")
    missing = boss.http.get("/api/catalog/NO_SUCH_TYPE")
    assert missing.status_code == 404 and missing.headers["content-type"] == PROBLEM


def test_users_see_their_tenant_and_strangers_nothing(server: ServerProcess, boss: Admin) -> None:
    tenant = boss.tenant()
    token = boss.user(tenant, "reader", "member")
    mine = httpx.get(f"{server.url}/api/catalog", headers=bearer(token))
    assert mine.status_code == 200 and mine.json()["tenantId"] == tenant
    other = httpx.get(
        f"{server.url}/api/catalog", headers=bearer(token), params={"tenantId": "someone-else"}
    )
    assert other.status_code == 403
    assert httpx.get(f"{server.url}/api/catalog").status_code == 401
    unknown = boss.http.get("/api/catalog", params={"tenantId": "no-such-tenant"})
    assert unknown.status_code == 404


# -- validation at publish ------------------------------------------------------


def _types_of(category: str) -> list[Any]:
    return [t for t in CATALOG if t.category == category]


@pytest.mark.parametrize("category", CATEGORIES)
@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_generated_valid_payloads_are_accepted(
    boss: Admin, tenant: str, category: str, data: Any
) -> None:
    event_type = data.draw(st.sampled_from(_types_of(category)), label="type")
    version = data.draw(st.sampled_from(sorted(event_type.versions)), label="version")
    payload = data.draw(valid(dict(event_type.versions[version])), label="payload")
    if all("{" in audience for audience in event_type.audiences):
        # Only templates: their values must be usable as ids, or nothing is
        # left to deliver to (and the event is refused as unscoped).
        for name in re.findall(r"\{data\.(\w+)\}", " ".join(event_type.audiences)):
            if name in payload:
                payload[name] = data.draw(st.from_regex(r"[A-Za-z0-9_.@-]{1,20}", fullmatch=True))
    event = envelope(tenant, event_type.name, payload, schema=event_type.ref(version))
    response = publish(boss, event)
    assert response.status_code == 202, (event, response.text)


@pytest.mark.parametrize("category", CATEGORIES)
@settings(
    max_examples=4,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_generated_payloads_missing_a_required_field_are_refused(
    boss: Admin, tenant: str, category: str, data: Any
) -> None:
    candidates = [
        t
        for t in _types_of(category)
        if set(t.versions[t.latest].get("required", [])) - {"tenantId"}
    ]
    if not candidates:
        return  # seed 000's payloads have no required fields
    event_type = data.draw(st.sampled_from(candidates), label="type")
    schema = dict(event_type.versions[event_type.latest])
    payload = data.draw(valid(schema), label="payload")
    field = data.draw(st.sampled_from(sorted(set(schema["required"]) - {"tenantId"})))
    event = envelope(tenant, event_type.name, payload)
    del event["data"][field]
    response = publish(boss, event)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert response.headers["content-type"] == PROBLEM
    assert (problem["field"], problem["rule"]) == (f"/data/{field}", "required"), problem
    assert problem["errors"][0]["pointer"] == f"/data/{field}"
    assert problem["schema"] == event_type.ref()


NOW = "2025-11-06T09:00:00Z"
INVALID = [
    # (type, data, pointer, rule)
    (
        "TICKET_STATUS_CHANGED",
        {
            "ticketId": "t1",
            "previousStatusId": "a",
            "newStatusId": "b",
            "actorUserId": "u",
            "changedAt": "yesterday",
        },
        "/data/changedAt",
        "format",
    ),
    (
        "TICKET_MESSAGE_ADDED",
        {
            "ticketId": "t",
            "messageId": "m",
            "visibility": "secret",
            "authorId": "a",
            "authorType": "user",
            "channel": "email",
            "createdAt": NOW,
        },
        "/data/visibility",
        "enum",
    ),
    (
        "TICKET_TIME_ENTRY_ADDED",
        {
            "ticketId": "t",
            "timeEntryId": "e",
            "actorUserId": "u",
            "minutes": "ten",
            "billable": True,
            "createdAt": NOW,
        },
        "/data/minutes",
        "type",
    ),
    (
        "PAYMENT_APPLIED",
        {
            "paymentId": "p",
            "appliedAt": NOW,
            "appliedByUserId": "u",
            "applications": [{"invoiceId": "i", "amountApplied": "12.50"}],
        },
        "/data/applications/0/amountApplied",
        "type",
    ),
    (
        "INVOICE_SENT",
        {"invoiceId": "i", "sentByUserId": "u", "sentAt": NOW, "deliveryMethod": "email"},
        "/data",
        "anyOf",
    ),
    (
        "TICKET_MERGED",
        {"sourceTicketId": "", "targetTicketId": "t2", "actorUserId": "u", "mergedAt": NOW},
        "/data/sourceTicketId",
        "minLength",
    ),
    (
        "ON_TENANT_SUSPENDED",
        {"previousState": "ACTIVE", "newState": "PAUSED", "changedAt": NOW},
        "/data/newState",
        "enum",
    ),
    ("course.completed", {"courseId": "c1", "completedAt": NOW}, "/data/userId", "required"),
    ("ticket.status_changed", {"ticketId": "t1", "newStatus": "DONE"}, "/data/newStatus", "enum"),
    (
        "invoice.created",
        {"invoiceId": "i", "amount": 10, "dueDate": "2025-13-01"},
        "/data/dueDate",
        "format",
    ),
    ("qms.car.updated", {"escalationLevel": 1.5}, "/data/escalationLevel", "type"),
    (
        "EMAIL_BOUNCED",
        {
            "messageId": "m",
            "providerMessageId": "p",
            "to": "a@b.c",
            "bouncedAt": NOW,
            "bounceType": "medium",
        },
        "/data/bounceType",
        "enum",
    ),
]


@pytest.mark.parametrize(
    ("event_type", "data", "pointer", "rule"), INVALID, ids=[i[0] for i in INVALID]
)
def test_hand_written_invalid_payloads_are_refused(
    boss: Admin, event_type: str, data: dict[str, Any], pointer: str, rule: str
) -> None:
    tenant = boss.tenant()
    response = publish(boss, envelope(tenant, event_type, data))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["code"] == "invalid_input"
    assert (problem["field"], problem["rule"]) == (pointer, rule), problem
    assert problem["schemaPath"] and problem["violations"][0]["pointer"] == pointer
    assert history(boss, tenant, event_type) == []  # nothing was stored


def test_batches_are_validated_as_a_whole(boss: Admin, tenant: str) -> None:
    good = envelope(tenant, "course.created", {"courseId": "c", "title": "T", "createdAt": NOW})
    bad = envelope(tenant, "course.created", {"courseId": "c", "createdAt": NOW})
    response = boss.http.post("/api/events/batch", json={"events": [good, bad]})
    assert response.status_code == 422
    assert response.json()["field"] == "/events/1/data/title"


def test_older_versions_stay_accepted(boss: Admin) -> None:
    tenant = boss.tenant()
    data = {"carId": "c1", "escalationLevel": "high"}  # fine for v1 (extra field), not v2
    old = publish(
        boss, envelope(tenant, "qms.car.updated", data, schema="payload.QmsCarUpdated.v1")
    )
    assert old.status_code == 202, old.text
    latest = publish(boss, envelope(tenant, "qms.car.updated", data))
    assert latest.status_code == 422 and latest.json()["schema"] == "payload.QmsCarUpdated.v2"
    wrong = publish(
        boss, envelope(tenant, "qms.car.updated", {}, schema="payload.QmsCarUpdated.v9")
    )
    assert wrong.status_code == 422 and wrong.json()["field"] == "/schema"
    stored = history(boss, tenant, "qms.car.updated")
    assert stored[0]["schema"] == "payload.QmsCarUpdated.v1"


def test_payload_tenant_must_match(boss: Admin, tenant: str) -> None:
    event = envelope(
        tenant,
        "CLIENT_ARCHIVED",
        {"clientId": "c", "archivedByUserId": "u", "archivedAt": NOW},
    )
    event["data"]["tenantId"] = "another-tenant"
    response = publish(boss, event)
    assert response.status_code == 422 and response.json()["field"] == "/data/tenantId"


def test_default_audiences_resolved_from_the_payload(boss: Admin) -> None:
    tenant = boss.tenant()
    data = {"courseId": "c9", "userId": "u9", "completedAt": NOW}
    assert publish(boss, envelope(tenant, "course.completed", data)).status_code == 202
    (stored,) = history(boss, tenant, "course.completed")
    assert stored["audiences"] == ["permission:lms.read", "user:u9"]
    explicit = envelope(tenant, "course.completed", data, audiences=["role:trainer"])
    assert publish(boss, explicit).status_code == 202
    assert history(boss, tenant, "course.completed")[0]["audiences"] == ["role:trainer"]
    unresolved = envelope(tenant, "notification.created", {"notificationId": "n", "userId": ""})
    response = publish(boss, unresolved)
    assert response.status_code == 422 and response.json()["field"] in (
        "/audiences",
        "/data/userId",
    )


# -- tenant-defined types ---------------------------------------------------------


def _tenant_type(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "title": "Widget shipped",
        "module": "widgets",
        "category": "Widgets",
        "description": {"en": "A widget left the factory", "ar": "غادرت القطعة المصنع"},
        "action": "SHIPPED",
        "audiences": ["permission:widgets.read", "user:{data.ownerId}"],
        "sensitive": {"data.ownerEmail": "widgets.pii.read"},
        "fields": "widgetId, ownerId?, ownerEmail?:email, shippedAt, weightKg?:number",
        **extra,
    }


def test_tenant_types_add_version_deactivate(server: ServerProcess, boss: Admin) -> None:
    tenant, other = boss.tenant(), boss.tenant()
    base = f"/api/admin/catalog/{tenant}/types"
    created = boss.http.post(base, json=_tenant_type("acme.widget.shipped"))
    assert created.status_code == 201, created.text
    assert created.json()["versions"][0]["schema"] == "payload.AcmeWidgetShipped.v1"
    assert boss.http.post(base, json=_tenant_type("acme.widget.shipped")).status_code == 409

    token = boss.user(tenant, "reader", "member")
    seen = httpx.get(
        f"{server.url}/api/catalog", headers=bearer(token), params={"module": "widgets"}
    )
    assert [i["type"] for i in seen.json()["items"]] == ["acme.widget.shipped"]
    assert seen.json()["items"][0]["source"] == f"tenant:{tenant}"
    assert boss.http.get("/api/catalog", params={"module": "widgets"}).json()["count"] == 0

    good = {"widgetId": "w1", "ownerId": "o1", "shippedAt": NOW}
    assert (
        publish(boss, {"type": "acme.widget.shipped", "tenantId": tenant, "data": good}).status_code
        == 202
    )
    (stored,) = history(boss, tenant, "acme.widget.shipped")
    assert stored["audiences"] == ["permission:widgets.read", "user:o1"]
    assert stored["action"] == "SHIPPED"
    bad = publish(
        boss, {"type": "acme.widget.shipped", "tenantId": tenant, "data": {"widgetId": "w"}}
    )
    assert bad.status_code == 422 and bad.json()["field"] == "/data/shippedAt"
    elsewhere = publish(boss, {"type": "acme.widget.shipped", "tenantId": other, "data": good})
    assert elsewhere.status_code == 422 and elsewhere.json()["field"] == "/type"

    # a compatible version, then a breaking one refused on request
    v2 = boss.http.post(
        f"{base}/acme.widget.shipped/versions",
        json={
            "fields": "widgetId, ownerId?, ownerEmail?:email, shippedAt, weightKg?:number, carrier?"
        },
    )
    assert v2.status_code == 201 and v2.json()["compatibility"]["compatible"] is True
    breaking = {"fields": "widgetId, shippedAt, carrier"}
    refused = boss.http.post(
        f"{base}/acme.widget.shipped/versions", params={"requireCompatible": "true"}, json=breaking
    )
    assert refused.status_code == 409 and refused.json()["compatibility"]["compatible"] is False
    v3 = boss.http.post(f"{base}/acme.widget.shipped/versions", json=breaking)
    assert v3.status_code == 201 and v3.json()["version"] == 3
    assert v3.json()["compatibility"]["backward"] is False
    v1_event = {
        "type": "acme.widget.shipped",
        "tenantId": tenant,
        "data": good,
        "schema": "payload.AcmeWidgetShipped.v1",
    }
    assert publish(boss, v1_event).status_code == 202  # older versions stay accepted
    latest = publish(boss, {"type": "acme.widget.shipped", "tenantId": tenant, "data": good})
    assert latest.status_code == 422 and latest.json()["field"] == "/data/carrier"
    detail = boss.http.get("/api/catalog/acme.widget.shipped", params={"tenantId": tenant}).json()
    assert [v["version"] for v in detail["versions"]] == [1, 2, 3]

    # deactivate: publishing is refused, the type stays listed
    off = boss.http.patch(f"{base}/acme.widget.shipped", json={"active": False})
    assert off.status_code == 200 and off.json()["active"] is False
    refused_publish = publish(boss, v1_event)
    assert refused_publish.status_code == 422 and "deactivated" in refused_publish.json()["detail"]
    listed = boss.http.get(base).json()["items"]
    assert [(i["type"], i["active"]) for i in listed] == [("acme.widget.shipped", False)]
    assert boss.http.patch(f"{base}/acme.widget.shipped", json={"active": True}).status_code == 200
    assert publish(boss, v1_event).status_code == 202


def test_tenant_types_are_validated_like_packs(boss: Admin) -> None:
    tenant = boss.tenant()
    base = f"/api/admin/catalog/{tenant}/types"
    cases = [
        (_tenant_type("TICKET_CREATED"), 409, "/name"),
        (_tenant_type("qms.car.updated"), 409, "/name"),
        (_tenant_type("acme.bad", fields="widgetId, shippedAt("), 422, "/versions/0/fields"),
        (_tenant_type("acme.bad", audiences=["everyone"]), 422, "/audiences/0"),
        (_tenant_type("acme.bad", sensitive={"email": "x"}), 422, "/sensitive"),
        (_tenant_type("Acme.Bad"), 422, ""),
        (_tenant_type("acme.widget.updated"), 422, "/versions/0"),
        (_tenant_type("acme.bad", colour="red"), 422, "/colour"),
        ({k: v for k, v in _tenant_type("acme.bad").items() if k != "fields"}, 422, ""),
        (_tenant_type("asyncapi.json"), 422, ""),
    ]
    for body, status, pointer in cases:
        response = boss.http.post(base, json=body)
        assert response.status_code == status, (body["name"], response.text)
        assert response.headers["content-type"] == PROBLEM
        assert response.json().get("field", "") == pointer, (body["name"], response.json())
    assert (
        boss.http.post(
            "/api/admin/catalog/no-such-tenant/types", json=_tenant_type("a.b")
        ).status_code
        == 404
    )
    anonymous = httpx.post(f"{boss.url}{base}", json=_tenant_type("acme.anon"))
    assert anonymous.status_code == 401
    key = boss.api_key(["publish"], tenant_id=tenant)
    assert (
        httpx.post(
            f"{boss.url}{base}", json=_tenant_type("acme.k"), headers=bearer(key)
        ).status_code
        == 403
    )
    assert boss.http.get(f"{base}/acme.nothing").status_code == 404
    assert ADMIN_KEY  # the module's admin client is what may write


def test_types_without_rules_need_explicit_audiences(boss: Admin) -> None:
    tenant = boss.tenant()
    body = _tenant_type("acme.quiet.event")
    del body["audiences"]
    assert boss.http.post(f"/api/admin/catalog/{tenant}/types", json=body).status_code == 201
    event = {
        "type": "acme.quiet.event",
        "tenantId": tenant,
        "data": {"widgetId": "w", "shippedAt": NOW},
    }
    refused = publish(boss, event)
    assert refused.status_code == 422 and refused.json()["field"] == "/audiences"
    assert publish(boss, {**event, "audiences": ["role:ops"]}).status_code == 202


ENTRY_KEYS = ["name", "title", "module", "category", "description", "entityType", "action"]
entry_bodies = st.fixed_dictionaries(
    {"name": st.sampled_from(["acme.fuzz.made", "ACME_FUZZ", "x", "acme.fuzz.updated"])},
    optional={
        "fields": st.text(max_size=40) | st.sampled_from(["a, b?", "a(b|c), d[]?", "a{b}, c[{d}]"]),
        "schema": json_values,
        "audiences": json_values,
        "sensitive": json_values,
        "versions": json_values,
        "active": json_values,
        **{key: json_values for key in ENTRY_KEYS[1:]},
    },
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=entry_bodies | json_values, version=json_values)
def test_tenant_type_endpoints_answer_4xx_never_5xx(
    boss: Admin, tenant: str, body: Any, version: Any
) -> None:
    base = f"/api/admin/catalog/{tenant}/types"
    created = boss.http.post(base, json=body)
    assert created.status_code in (201, 400, 409, 422), created.text
    name = body.get("name") if isinstance(body, dict) else None
    if created.status_code == 201:
        added = boss.http.post(f"{base}/{name}/versions", json=version)
        assert added.status_code in (201, 400, 422), added.text
        patched = boss.http.patch(f"{base}/{name}", json=version)
        assert patched.status_code in (200, 400, 422), patched.text
        listed = boss.http.get("/api/catalog", params={"tenantId": tenant})
        assert listed.status_code == 200
        assert boss.http.get("/api/catalog/asyncapi.json", params={"tenantId": tenant}).is_success
