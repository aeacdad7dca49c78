"""API keys over real HTTP: listed without their secrets (a tenant-bound
admin key sees its tenant's only), revoked at once (on every process, on
PostgreSQL with two servers), expiring, and when each was last used."""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from support import ADMIN_KEY, Admin, ServerProcess, bearer, sse, unique


def create(admin: Admin, **body: Any) -> dict[str, Any]:
    response = admin.http.post("/api/admin/api-keys", json={"scopes": ["publish"], **body})
    assert response.status_code == 201, response.text
    return dict(response.json())


def listed(client: httpx.Client, **params: Any) -> dict[str, dict[str, Any]]:
    response = client.get("/api/admin/api-keys", params=params)
    assert response.status_code == 200, response.text
    return {k["id"]: k for k in response.json()["items"]}


def publish(server: ServerProcess, key: str, tenant: str) -> httpx.Response:
    event = {"type": "qms.car.updated", "tenantId": tenant, "entityId": unique("car"), "data": {}}
    return httpx.post(f"{server.url}/api/events", json=event, headers=bearer(key))


def test_the_listing_shows_every_field_but_never_the_secret(
    server: ServerProcess, admin: Admin
) -> None:
    tenant, other = admin.tenant(), admin.tenant()
    mine = create(admin, tenantId=tenant, name="ingest", expiresInS=3600, publishRate=5)
    theirs = create(admin, tenantId=other)
    platform = create(admin, scopes=["admin"])
    everything = listed(admin.http)
    assert {mine["id"], theirs["id"], platform["id"]} <= set(everything)
    shown = everything[mine["id"]]
    assert set(shown) == {
        "id",
        "name",
        "scopes",
        "tenantId",
        "createdAt",
        "lastUsedAt",
        "expiresAt",
        "revokedAt",
        "publishRate",
    }
    assert (shown["name"], shown["scopes"], shown["tenantId"]) == ("ingest", ["publish"], tenant)
    assert shown["publishRate"] == 5 and shown["revokedAt"] is None
    expires = datetime.fromisoformat(shown["expiresAt"].replace("Z", "+00:00"))
    assert timedelta(minutes=59) < expires - datetime.now(UTC) <= timedelta(hours=1)
    text = admin.http.get("/api/admin/api-keys").text
    for secret in (mine["key"], theirs["key"], platform["key"]):
        assert secret not in text and secret[4:] not in text
    assert hashlib.sha256(mine["key"].encode()).hexdigest() not in text
    assert set(listed(admin.http, tenantId=tenant)) == {mine["id"]}
    # a tenant-bound admin key: its tenant's keys only, whatever it asks for
    scoped = httpx.Client(base_url=server.url, headers=bearer(admin.api_key(["admin"], tenant)))
    seen = listed(scoped)
    assert mine["id"] in seen and theirs["id"] not in seen and platform["id"] not in seen
    assert all(k["tenantId"] == tenant for k in seen.values())
    assert scoped.get("/api/admin/api-keys", params={"tenantId": other}).status_code == 403
    scoped.close()


def test_a_revoked_key_is_refused_at_once(server: ServerProcess, admin: Admin) -> None:
    tenant = admin.tenant()
    made = create(admin, tenantId=tenant)
    for _ in range(3):  # used: now in the process's cache
        assert publish(server, made["key"], tenant).status_code == 202
    assert admin.http.delete(f"/api/admin/api-keys/{made['id']}").status_code == 204
    refused = publish(server, made["key"], tenant)
    assert refused.status_code == 401 and "revoked" in refused.json()["detail"]
    assert listed(admin.http, tenantId=tenant)[made["id"]]["revokedAt"] is not None
    again = admin.http.delete(f"/api/admin/api-keys/{made['id']}")
    assert again.status_code == 204  # revoking twice is fine
    live = listed(admin.http, tenantId=tenant, revoked="false")
    assert made["id"] not in live
    assert set(listed(admin.http, tenantId=tenant, revoked="true")) == {made["id"]}
    bad = admin.http.get("/api/admin/api-keys", params={"revoked": "maybe"})
    assert bad.status_code == 422 and bad.json()["field"] == "revoked"


def test_a_tenant_admin_revokes_its_own_keys_only(server: ServerProcess, admin: Admin) -> None:
    tenant, other = admin.tenant(), admin.tenant()
    own, theirs, platform = (
        create(admin, tenantId=tenant),
        create(admin, tenantId=other),
        create(admin),
    )
    scoped = httpx.Client(base_url=server.url, headers=bearer(admin.api_key(["admin"], tenant)))
    for foreign in (theirs, platform):
        assert scoped.delete(f"/api/admin/api-keys/{foreign['id']}").status_code == 404
        assert publish(server, foreign["key"], other).status_code == 202  # still works
    assert scoped.delete("/api/admin/api-keys/key_nosuchkey").status_code == 404
    assert scoped.delete(f"/api/admin/api-keys/{own['id']}").status_code == 204
    assert publish(server, own["key"], tenant).status_code == 401
    scoped.close()


def test_keys_expire(server: ServerProcess, admin: Admin) -> None:
    tenant = admin.tenant()
    soon = create(admin, tenantId=tenant, expiresInS=1.5)
    at = (datetime.now(UTC) + timedelta(seconds=1.5)).isoformat()
    dated = create(admin, tenantId=tenant, expiresAt=at)
    later = create(admin, tenantId=tenant, expiresInS=3600)
    for made in (soon, dated, later):
        assert publish(server, made["key"], tenant).status_code == 202
    time.sleep(1.7)
    for made in (soon, dated):
        refused = publish(server, made["key"], tenant)
        assert refused.status_code == 401 and "expired" in refused.json()["detail"]
        assert refused.headers["www-authenticate"].startswith("Bearer")
    assert publish(server, later["key"], tenant).status_code == 202


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"expiresInS": 60, "expiresAt": "2099-01-01T00:00:00Z"}, "/expiresInS"),
        ({"expiresAt": "2001-01-01T00:00:00Z"}, "/expiresAt"),
        ({"expiresAt": "not a time"}, "/expiresAt"),
        ({"expiresAt": "9999-01-01T00:00:00Z"}, "/expiresAt"),
        ({"expiresInS": 0}, "/expiresInS"),
        ({"expiresInS": -5}, "/expiresInS"),
        ({"expiresInS": 1e12}, "/expiresInS"),
        ({"publishRate": -1}, "/publishRate"),
    ],
)
def test_bad_expiries_and_rates_are_refused_and_store_nothing(
    server: ServerProcess, admin: Admin, body: dict[str, Any], field: str
) -> None:
    tenant = admin.tenant()
    response = admin.http.post(
        "/api/admin/api-keys", json={"scopes": ["publish"], "tenantId": tenant, **body}
    )
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field
    assert listed(admin.http, tenantId=tenant) == {}


def test_last_use_is_recorded_without_a_write_per_request(
    server: ServerProcess, admin: Admin
) -> None:
    tenant = admin.tenant()
    made, idle = create(admin, tenantId=tenant), create(admin, tenantId=tenant)
    before = time.time()
    for _ in range(5):
        assert publish(server, made["key"], tenant).status_code == 202
    deadline = time.monotonic() + 15  # flushed every TIDINGS_CACHE_TTL_S (5 s)
    while listed(admin.http, tenantId=tenant)[made["id"]]["lastUsedAt"] is None:
        assert time.monotonic() < deadline, "last use never recorded"
        time.sleep(0.25)
    keys = listed(admin.http, tenantId=tenant)
    used = datetime.fromisoformat(keys[made["id"]]["lastUsedAt"].replace("Z", "+00:00"))
    assert before - 1 <= used.timestamp() <= time.time()
    assert keys[idle["id"]]["lastUsedAt"] is None


@pytest.mark.slow
@pytest.mark.asyncio
async def test_revocation_reaches_every_process_at_once(pg_url: str, tmp_path: Path) -> None:
    """Two servers on one PostgreSQL, with a one-minute auth cache: a key
    revoked through one is refused by the other, and the other's stream
    opened with it closes, long before its cache would have expired."""
    env = {"TIDINGS_CACHE_TTL_S": "60"}
    servers = [ServerProcess(pg_url, env=env) for _ in range(2)]
    for i, srv in enumerate(servers):
        srv.start(tmp_path / f"server{i}.log")
    try:
        one, two = servers
        admin = Admin(one.url)
        tenant = admin.tenant()
        made = create(admin, scopes=["publish", "admin"], tenantId=tenant)
        assert publish(two, made["key"], tenant).status_code == 202  # cached on two
        async with sse(two.url, made["key"]) as stream:
            revoked = httpx.delete(
                f"{one.url}/api/admin/api-keys/{made['id']}", headers=bearer(ADMIN_KEY)
            )
            assert revoked.status_code == 204
            _id, message = await stream.next(timeout=3)
            while message.get("type") != "closed":
                _id, message = await stream.next(timeout=3)
            assert message["reason"] == "key_revoked"
        assert publish(two, made["key"], tenant).status_code == 401
        admin.close()
    finally:
        for srv in servers:
            srv.stop()


@pytest.mark.asyncio
async def test_revoking_a_key_closes_the_streams_opened_with_it(
    server: ServerProcess, admin: Admin
) -> None:
    tenant = admin.tenant()
    made, kept = (create(admin, scopes=["admin"], tenantId=tenant) for _ in range(2))
    async with sse(server.url, made["key"]) as doomed, sse(server.url, kept["key"]) as other:
        assert admin.http.delete(f"/api/admin/api-keys/{made['id']}").status_code == 204
        _id, message = await doomed.next(timeout=5)
        while message.get("type") != "closed":
            _id, message = await doomed.next(timeout=5)
        assert message["reason"] == "key_revoked"
        assert admin.publish({"type": "qms.car.updated", "tenantId": tenant, "data": {}}).is_success
        (event,) = await other.events(1)  # the other key's stream goes on
        assert event["tenantId"] == tenant
    reconnect = httpx.get(f"{server.url}/api/events", headers=bearer(made["key"]))
    assert reconnect.status_code == 401


@pytest.mark.asyncio
async def test_a_stream_opened_with_an_expiring_key_ends_at_its_expiry(
    server: ServerProcess, admin: Admin
) -> None:
    tenant = admin.tenant()
    made = create(admin, scopes=["admin"], tenantId=tenant, expiresInS=2)
    async with sse(server.url, made["key"]) as stream:
        _id, message = await stream.next(timeout=6)
        while message.get("type") not in ("reconnect", "closed"):
            _id, message = await stream.next(timeout=6)
    assert message == {**message, "type": "reconnect", "reason": "token_expired"}
    assert publish(server, made["key"], tenant).status_code == 401
