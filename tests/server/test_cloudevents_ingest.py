"""CloudEvents in: structured, batch and binary mode over real HTTP, built
by the ``cloudevents`` SDK as a producer would, on SQLite and PostgreSQL.
The same validation, idempotency, authorization and errors as the native
envelope, the errors naming the CloudEvents attribute."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from cloudevents.core.bindings.http import to_binary, to_structured
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from support import Admin, ServerProcess, bearer, unique

FORMAT = JSONFormat()


def history(admin: Admin, tenant: str) -> list[dict[str, Any]]:
    response = admin.http.get("/api/events/log", params={"tenantId": tenant, "order": "asc"})
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def car(tenant: str, **attributes: Any) -> CloudEvent:
    data = attributes.pop("data", {"x": 1})
    base: dict[str, Any] = {
        "id": unique("ce"),
        "type": "qms.car.updated",
        "source": "https://factory.example/line-3",
        "tenantid": tenant,
        "subject": "c1",
    }
    return CloudEvent({**base, **attributes}, data)


def post_structured(admin: Admin, event: CloudEvent, **kwargs: Any) -> httpx.Response:
    message = to_structured(event, FORMAT)
    return admin.http.post("/api/events", content=message.body, headers=message.headers, **kwargs)


def post_binary(admin: Admin, event: CloudEvent) -> httpx.Response:
    message = to_binary(event, FORMAT)
    return admin.http.post("/api/events", content=message.body, headers=message.headers)


def test_structured_mode_maps_every_attribute_onto_the_envelope(admin: Admin) -> None:
    tenant = admin.tenant()
    event = car(
        tenant,
        time=datetime(2026, 5, 16, 14, 23, 41, 123000, tzinfo=UTC),
        entitytype="car",
        action="UPDATED",
        audiences="permission:qms.read,user:u7",
        actor=json.dumps({"userId": "u7", "name": "Ada"}),
        metadata=json.dumps({"line": 3}),
        datacontenttype="application/json",
        data={"x": 2},
    )
    response = post_structured(admin, event)
    assert response.status_code == 202, response.text
    assert response.json()["id"] == event.get_id()
    (stored,) = history(admin, tenant)
    assert stored["id"] == event.get_id() and stored["tenantId"] == tenant
    assert stored["type"] == "qms.car.updated" and stored["entityId"] == "c1"
    assert stored["entityType"] == "car" and stored["action"] == "UPDATED"
    assert stored["timestamp"] == "2026-05-16T14:23:41.123Z"
    assert stored["audiences"] == ["permission:qms.read", "user:u7"]
    assert stored["actor"] == {"userId": "u7", "name": "Ada"}
    assert stored["metadata"] == {"line": 3} and stored["data"] == {"x": 2}
    assert stored["schema"].startswith("payload.QmsCarUpdated.v")


def test_binary_mode_maps_the_headers_and_the_body(admin: Admin) -> None:
    tenant = admin.tenant()
    schema = "urn:tidings:schema:payload.QmsCarUpdated.v1"
    event = car(tenant, dataschema=schema, subject="car 9/ü", data={"x": 3})
    response = post_binary(admin, event)
    assert response.status_code == 202, response.text
    (stored,) = history(admin, tenant)
    assert stored["id"] == event.get_id() and stored["entityId"] == "car 9/ü"
    assert stored["data"] == {"x": 3} and stored["schema"] == "payload.QmsCarUpdated.v1"
    assert stored["audiences"] == ["permission:qms.read"]  # the catalog's default, as natively


def test_the_cloudevent_id_makes_publishing_idempotent(admin: Admin) -> None:
    tenant = admin.tenant()
    event = car(tenant)
    first = post_structured(admin, event)
    again = post_binary(admin, car(tenant, id=event.get_id(), data={"x": 9}))
    assert first.status_code == again.status_code == 202
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    assert len(history(admin, tenant)) == 1


def test_a_tenants_source_names_the_tenant_and_keys_stay_in_theirs(
    server: ServerProcess, admin: Admin
) -> None:
    mine, theirs = admin.tenant(), admin.tenant()
    attributes = {"id": unique("ce"), "type": "qms.car.updated", "source": f"/tenants/{mine}"}
    ok = post_structured(admin, CloudEvent(attributes, {"x": 1}))
    assert ok.status_code == 202, ok.text
    key = admin.api_key(["publish"], tenant_id=mine)
    client = httpx.Client(base_url=server.url, headers=bearer(key), timeout=10)
    bound = {"id": unique("ce"), "type": "qms.car.updated", "source": "urn:producer"}
    message = to_binary(CloudEvent(bound, {"x": 1}), FORMAT)
    assert client.post("/api/events", content=message.body, headers=message.headers).is_success
    message = to_structured(car(theirs), FORMAT)
    outside = client.post("/api/events", content=message.body, headers=message.headers)
    assert outside.status_code == 403 and outside.json()["field"] == "/tenantid"
    client.close()
    assert len(history(admin, mine)) == 2 and history(admin, theirs) == []


def test_a_batch_is_atomic_ordered_and_names_the_event_and_attribute(admin: Admin) -> None:
    tenant = admin.tenant()
    events = [FORMAT.write(car(tenant, subject=f"c{i}")) for i in range(3)]
    body = b"[" + b",".join(events) + b"]"
    headers = {"content-type": "application/cloudevents-batch+json"}
    response = admin.http.post("/api/events/batch", content=body, headers=headers)
    assert response.status_code == 202, response.text
    positions = [r["position"] for r in response.json()["results"]]
    assert positions == list(range(positions[0], positions[0] + 3))
    assert [e["entityId"] for e in history(admin, tenant)] == ["c0", "c1", "c2"]
    bad = b"[" + b",".join([FORMAT.write(car(tenant)), FORMAT.write(car(tenant, action="NOPE"))])
    response = admin.http.post("/api/events/batch", content=bad + b"]", headers=headers)
    assert response.status_code == 422 and response.json()["field"] == "/1/action"
    unknown = b"[" + FORMAT.write(car("no-such-tenant")) + b"]"
    response = admin.http.post("/api/events/batch", content=unknown, headers=headers)
    assert response.status_code == 422 and response.json()["field"] == "/0/tenantid"
    for empty in (b"[]", b"{}"):
        response = admin.http.post("/api/events/batch", content=empty, headers=headers)
        assert response.status_code == 422 and response.json()["field"] == ""
    assert len(history(admin, tenant)) == 3


def _structured(tenant: str, **changes: Any) -> bytes:
    body = json.loads(FORMAT.write(car(tenant)))
    body.update(changes)
    return json.dumps({k: v for k, v in body.items() if v is not None}).encode()


@pytest.mark.parametrize(
    ("changes", "status", "field"),
    [
        ({"type": "no.such.type"}, 422, "/type"),
        ({"source": None}, 422, "/source"),
        ({"specversion": "0.3"}, 422, "/specversion"),
        ({"id": None}, 422, "/id"),
        ({"time": "yesterday"}, 422, "/time"),
        ({"subject": ""}, 422, "/subject"),
        ({"audiences": "everyone"}, 422, "/audiences/0"),
        ({"actor": "not json"}, 422, "/actor"),
        ({"colour": "red"}, 422, "/colour"),
        ({"position": 7}, 422, "/position"),
        ({"datacontenttype": "text/plain"}, 422, "/datacontenttype"),
        ({"data": "a string"}, 422, "/data"),
        ({"data": None, "data_base64": "AAEC"}, 422, "/data"),
        ({"data": {"x": 10**30}}, 422, "/data/x"),
        ({"tenantid": "no-such-tenant"}, 422, "/tenantid"),
    ],
)
def test_bad_structured_events_name_the_attribute_and_store_nothing(
    admin: Admin, changes: dict[str, Any], status: int, field: str
) -> None:
    tenant = admin.tenant()
    headers = {"content-type": "application/cloudevents+json"}
    response = admin.http.post(
        "/api/events", content=_structured(tenant, **changes), headers=headers
    )
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["field"] == field
    assert history(admin, tenant) == []


@pytest.mark.parametrize(
    ("headers", "body", "status", "field"),
    [
        ({"ce-type": "no.such.type"}, b"{}", 422, "ce-type"),
        ({"ce-source": None}, b"{}", 422, "ce-source"),
        ({"ce-time": "not-a-time"}, b"{}", 422, "ce-time"),
        ({"ce-action": "EXPLODED"}, b"{}", 422, "ce-action"),
        ({"ce-colour": "red"}, b"{}", 422, "ce-colour"),
        ({"content-type": "text/plain"}, b"hello", 422, "Content-Type"),
        ({}, b'{"x": ', 400, ""),
        ({}, b"[1]", 422, ""),  # the body is the data: it must be an object
    ],
)
def test_bad_binary_events_name_the_header_and_store_nothing(
    admin: Admin, headers: dict[str, str | None], body: bytes, status: int, field: str
) -> None:
    tenant = admin.tenant()
    sent = {k: v for k, v in to_binary(car(tenant), FORMAT).headers.items()}
    sent.update(headers)  # type: ignore[arg-type]
    response = admin.http.post(
        "/api/events", content=body, headers={k: v for k, v in sent.items() if v is not None}
    )
    assert response.status_code == status, response.text
    assert response.json()["field"] == field
    assert history(admin, tenant) == []


def test_the_structured_media_type_wins_over_ce_headers(admin: Admin) -> None:
    """The HTTP binding: application/cloudevents+json is structured mode."""
    tenant = admin.tenant()
    message = to_structured(car(tenant, data={"note": "data_base64"}), FORMAT)
    headers = {**message.headers, "ce-specversion": "1.0"}
    response = admin.http.post("/api/events", content=message.body, headers=headers)
    assert response.status_code == 202, response.text
    (stored,) = history(admin, tenant)
    assert stored["data"] == {"note": "data_base64"}


def test_media_types_belong_to_their_path(admin: Admin) -> None:
    tenant = admin.tenant()
    single = {"content-type": "application/cloudevents+json"}
    batch = {"content-type": "application/cloudevents-batch+json"}
    body = FORMAT.write(car(tenant))
    assert admin.http.post("/api/events/batch", content=body, headers=single).status_code == 415
    response = admin.http.post("/api/events", content=b"[" + body + b"]", headers=batch)
    assert response.status_code == 415 and response.json()["field"] == "Content-Type"
    assert history(admin, tenant) == []


def test_the_openapi_document_describes_both_modes(admin: Admin) -> None:
    paths = admin.http.get("/openapi.json").json()["paths"]
    single = paths["/api/events"]["post"]
    assert "application/cloudevents+json" in single["requestBody"]["content"]
    assert "ce-specversion" in single["description"]
    batch = paths["/api/events/batch"]["post"]["requestBody"]["content"]
    assert batch["application/cloudevents-batch+json"]["schema"]["type"] == "array"
