"""Publishing over real HTTP: durable 202s, idempotency, and every bad
input answered with problem+json naming the field, storing nothing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from support import JWT_SECRET, Admin, ServerProcess, bearer, token_for


def history(admin: Admin, tenant: str) -> list[dict[str, Any]]:
    response = admin.http.get("/api/events/log", params={"tenantId": tenant, "limit": 500})
    assert response.status_code == 200, response.text
    return response.json()["items"]


def car(tenant: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "qms.car.updated",
        "tenantId": tenant,
        "entityId": "c1",
        "data": {"x": 1},
        **extra,
    }


def test_publish_answers_202_with_id_and_position_after_commit(admin: Admin) -> None:
    tenant = admin.tenant()
    response = admin.publish(car(tenant))
    assert response.status_code == 202
    body = response.json()
    assert body["id"].startswith("evt_") and len(body["id"]) == 30
    (stored,) = history(admin, tenant)
    assert stored["position"] == body["position"]
    assert stored["schema"].startswith("payload.QmsCarUpdated.v")
    assert stored["action"] == "UPDATED" and stored["entityType"] == "car"
    assert stored["audiences"] == ["permission:qms.read"]  # the catalog's default


def test_the_same_producer_id_gives_the_same_answer_and_one_event(admin: Admin) -> None:
    tenant = admin.tenant()
    first = admin.publish(car(tenant, id="evt_01HXYZSAMEID"))
    again = admin.publish(car(tenant, id="evt_01HXYZSAMEID", data={"x": 2}))
    assert again.status_code == 202 and again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert len(history(admin, tenant)) == 1
    other = admin.tenant()  # ids are scoped per tenant
    assert (
        admin.publish(car(other, id="evt_01HXYZSAMEID")).json()["position"]
        != first.json()["position"]
    )


def test_idempotency_key_header_deduplicates(admin: Admin) -> None:
    tenant = admin.tenant()
    headers = {"Idempotency-Key": "approve-tkt-001-20251106"}
    first = admin.publish(car(tenant), headers=headers)
    again = admin.publish(car(tenant), headers=headers)
    assert first.json() == again.json()
    assert len(history(admin, tenant)) == 1


def test_batch_is_atomic_and_ordered(admin: Admin) -> None:
    tenant = admin.tenant()
    events = [car(tenant, entityId=f"c{i}") for i in range(5)]
    response = admin.http.post("/api/events/batch", json={"events": events})
    assert response.status_code == 202
    positions = [r["position"] for r in response.json()["results"]]
    assert positions == list(range(positions[0], positions[0] + 5))
    bad = [*events[:2], {"type": "qms.car.updated", "tenantId": tenant, "audiences": ["nope"]}]
    response = admin.http.post("/api/events/batch", json={"events": bad})
    assert response.status_code == 422
    assert response.json()["field"] == "/events/2/audiences/0"
    assert len(history(admin, tenant)) == 5


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        (b'{"type": "qms.car.updated", ', 400, ""),
        (b"[]", 422, ""),
        (b'{"tenantId": "T"}', 422, "/type"),
        (b'{"type": "no.such.type", "tenantId": "T"}', 422, "/type"),
        (
            b'{"type": "qms.car.updated", "tenantId": "T", "audiences": ["everyone"]}',
            422,
            "/audiences/0",
        ),
        (
            b'{"type": "qms.car.updated", "tenantId": "T", "audiences": ["user:a\\nid: 9"]}',
            422,
            "/audiences/0",
        ),
        (b'{"type": "qms.car.updated", "tenantId": "T", "audiences": []}', 422, "/audiences"),
        (b'{"type": "qms.car.updated", "tenantId": "T", "action": "EXPLODED"}', 422, "/action"),
        (b'{"type": "qms.car.updated", "tenantId": "no-such-tenant"}', 422, "/tenantId"),
    ],
)
def test_bad_input_is_a_problem_naming_the_field_and_stores_nothing(
    admin: Admin, body: bytes, status: int, field: str
) -> None:
    tenant = admin.tenant()
    response = admin.http.post(
        "/api/events",
        content=body.replace(b'"T"', f'"{tenant}"'.encode()),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == status and problem["field"] == field and problem["detail"]
    assert history(admin, tenant) == []


def test_oversized_events_are_413(admin: Admin) -> None:
    tenant = admin.tenant()
    response = admin.publish(car(tenant, data={"blob": "x" * 70_000}))
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    big_batch = {"events": [car(tenant, data={"blob": "x" * 70_000})]}
    assert admin.http.post("/api/events/batch", json=big_batch).json()["field"] == "/events/0"
    assert history(admin, tenant) == []


def test_keys_are_scoped_to_their_tenant_and_their_rights(
    server: ServerProcess, admin: Admin
) -> None:
    mine, theirs = admin.tenant(), admin.tenant()
    key = admin.api_key(["publish"], tenant_id=mine)
    client = httpx.Client(base_url=server.url, headers=bearer(key))
    ok = client.post(
        "/api/events", json={"type": "qms.car.updated", "entityId": "c"}
    )  # tenant from the key
    assert ok.status_code == 202
    outside = client.post("/api/events", json=car(theirs))
    assert outside.status_code == 403 and outside.json()["field"] == "/tenantId"
    assert client.put(f"/api/admin/tenants/{mine}", json={"name": "x"}).status_code == 403
    assert history(admin, theirs) == []
    assert len(history(admin, mine)) == 1
    user = admin.user(mine, "u1", "member")
    assert (
        httpx.post(f"{server.url}/api/events", json=car(mine), headers=bearer(user)).status_code
        == 403
    )


def test_tokens_expired_forged_and_unknown(server: ServerProcess, admin: Admin) -> None:
    tenant = admin.tenant()
    admin.user(tenant, "u1", "member")
    cases = {
        token_for(tenant, "u1", ttl_s=-10): 401,  # expired
        token_for(tenant, "u1", secret="not-the-secret-but-long-enough-000000"): 401,  # forged
        "not.a.jwt": 401,
        token_for(tenant, "nobody"): 403,  # unknown user
        token_for("no-such-tenant", "u1"): 403,  # unknown tenant
    }
    for token, status in cases.items():
        for path in ("/api/events", "/api/events/log"):
            response = httpx.get(f"{server.url}{path}", headers=bearer(token), timeout=5)
            assert response.status_code == status, (path, response.text)
            assert response.headers["content-type"] == "application/problem+json"
    assert httpx.get(f"{server.url}/api/events").status_code == 401
    assert JWT_SECRET  # the server's secret is the one tests mint with


def test_history_filters_pages_and_authorizes(server: ServerProcess, admin: Admin) -> None:
    tenant = admin.tenant()
    admin.role("reader", ["qms.read"], tenant_id=tenant)
    token = admin.user(tenant, "r", "reader")
    for i in range(7):
        admin.publish(car(tenant, entityId=f"c{i % 2}"))
    admin.publish(
        {"type": "tasks.assignment.created", "tenantId": tenant, "data": {"assigneeId": "someone"}}
    )
    client = httpx.Client(base_url=server.url, headers=bearer(token))
    seen: list[int] = []
    cursor = None
    while True:
        params = {"limit": "3", **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/events/log", params=params).json()
        seen += [e["position"] for e in page["items"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert len(seen) == 7 and seen == sorted(
        seen, reverse=True
    )  # newest first, tasks event invisible
    only_c1 = client.get("/api/events/log", params={"entityId": "c1", "order": "asc"}).json()[
        "items"
    ]
    assert [e["entityId"] for e in only_c1] == ["c1"] * 3
    assert client.get("/api/events/log", params={"types": "tasks.*"}).json()["items"] == []
    assert client.get("/api/events/log", params={"limit": "0"}).status_code == 422
    assert client.get("/api/events/log", params={"since": "not a date"}).json()["field"] == "since"
