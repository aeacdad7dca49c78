"""Platform users (issue 12, defect 2), over real HTTP on SQLite and
PostgreSQL: only global credentials make or change them, their reach is
always named, and nothing a tenant's admin can write widens what they see
in other tenants (history, live stream, replay, PII)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from support import Admin, ServerProcess, bearer, sse, unique

pytestmark = pytest.mark.asyncio


def put_user(client: httpx.Client, tenant: str, user: str, **body: Any) -> httpx.Response:
    return client.put(
        f"/api/admin/tenants/{tenant}/users/{user}", json={"systemRole": "ops", **body}
    )


def car(tenant: str, **data: Any) -> dict[str, Any]:
    return {
        "type": "qms.car.updated",
        "tenantId": tenant,
        "entityId": unique("car"),
        "audiences": ["role:ops"],
        "data": data,
    }


def scoped_admin(server: ServerProcess, admin: Admin, tenant: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers=bearer(admin.api_key(["admin"], tenant)))


@pytest.mark.parametrize(
    "body",
    [
        {"platform": True, "platformTenants": ["OTHER"]},
        {"platform": True, "platformTenants": ["*"]},
        {"platform": True},  # the old silent default: every tenant
    ],
)
async def test_a_tenant_admin_cannot_make_a_platform_user(
    server: ServerProcess, admin: Admin, body: dict[str, Any]
) -> None:
    acme, globex = admin.tenant(), admin.tenant()
    if body.get("platformTenants") == ["OTHER"]:
        body = {**body, "platformTenants": [globex]}
    scoped = scoped_admin(server, admin, acme)
    refused = put_user(scoped, acme, "x", **body)
    assert refused.status_code == 403, refused.text
    assert admin.http.get(f"/api/admin/tenants/{acme}/users/x").status_code == 404
    scoped.close()


async def test_a_tenant_admin_cannot_change_or_delete_a_platform_user(
    server: ServerProcess, admin: Admin
) -> None:
    acme, globex = admin.tenant(), admin.tenant()
    admin.user(acme, "ops", "ops", platform=True, platform_tenants=[globex])
    scoped = scoped_admin(server, admin, acme)
    for change in (
        {"platform": True, "platformTenants": ["*"]},
        {"permissionOverrides": {"grant": ["qms.pii.read"]}},
        {"platform": False},
    ):
        assert put_user(scoped, acme, "ops", **change).status_code == 403
    assert scoped.delete(f"/api/admin/tenants/{acme}/users/ops").status_code == 403
    kept = admin.http.get(f"/api/admin/tenants/{acme}/users/ops").json()
    assert kept["platform"] is True and kept["platformTenants"] == [globex]
    assert kept["permissionOverrides"]["grant"] == []
    # its own ordinary users it still manages
    assert put_user(scoped, acme, "plain").status_code == 200
    assert scoped.delete(f"/api/admin/tenants/{acme}/users/plain").status_code == 204
    scoped.close()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"platform": True}, "/platformTenants"),
        ({"platform": True, "platformTenants": []}, "/platformTenants"),
        ({"platform": True, "platformTenants": ["*", "KNOWN"]}, "/platformTenants"),
        ({"platform": True, "platformTenants": ["no-such-tenant-x"]}, "/platformTenants/0"),
        ({"platform": False, "platformTenants": ["KNOWN"]}, "/platformTenants"),
    ],
)
async def test_a_platform_users_reach_is_always_named(
    admin: Admin, body: dict[str, Any], field: str
) -> None:
    home, known = admin.tenant(), admin.tenant()
    named = [known if t == "KNOWN" else t for t in body.get("platformTenants", [])]
    if "platformTenants" in body:
        body = {**body, "platformTenants": named}
    refused = put_user(admin.http, home, "ops", **body)  # even the bootstrap key
    assert refused.status_code == 422, refused.text
    assert refused.json()["field"] == field
    assert admin.http.get(f"/api/admin/tenants/{home}/users/ops").status_code == 404


async def test_a_platform_user_sees_the_tenants_named_and_no_others(
    server: ServerProcess, admin: Admin
) -> None:
    home, named, unnamed = admin.tenant(), admin.tenant(), admin.tenant()
    role = unique("ops")
    admin.role(role, ["qms.read"])
    token = admin.user(home, "ops", role, platform=True, platform_tenants=[named])
    events = {t: {**car(t), "audiences": [f"role:{role}"]} for t in (named, unnamed)}
    async with sse(server.url, token) as stream:
        for event in events.values():
            assert admin.publish(event).status_code == 202
        (seen,) = await stream.events(1)
        assert seen["tenantId"] == named
        assert await stream.nothing_for(0.5)
    reader = httpx.Client(base_url=server.url, headers=bearer(token))
    history = reader.get("/api/events/log").json()["items"]
    assert {e["tenantId"] for e in history} == {named}
    reader.close()


async def test_a_tenant_cannot_widen_a_platform_users_view_of_other_tenants(
    server: ServerProcess, admin: Admin
) -> None:
    """acme's admin sets a role override for the platform user's role in
    acme, granting PII: in globex, live and in history, the user still sees
    what the global role allows (no PII)."""
    acme, globex = admin.tenant(), admin.tenant()
    role = unique("ops")
    admin.role(role, ["qms.read"])  # global: no qms.pii.read
    token = admin.user(acme, "ops", role, platform=True, platform_tenants=[globex])
    scoped = scoped_admin(server, admin, acme)
    widened = scoped.put(
        f"/api/admin/roles/{role}",
        json={"permissions": ["qms.read", "qms.pii.read", "secret.stuff"], "tenantId": acme},
    )
    assert widened.status_code == 200  # allowed: it is acme's override
    event = {
        "type": "qms.car.updated",
        "tenantId": globex,
        "entityId": unique("car"),
        "audiences": ["permission:secret.stuff", f"role:{role}"],
        "metadata": {"reporterEmail": "pii@globex.example"},
        "data": {},
    }
    hidden = {**event, "entityId": unique("car"), "audiences": ["permission:secret.stuff"]}
    async with sse(server.url, token) as stream:
        assert admin.publish(hidden).status_code == 202
        assert admin.publish(event).status_code == 202
        (seen,) = await stream.events(1)
    assert seen["entityId"] == event["entityId"]
    assert "pii@globex.example" not in str(seen)
    reader = httpx.Client(base_url=server.url, headers=bearer(token))
    history = reader.get("/api/events/log", params={"types": "qms.car.updated"}).json()["items"]
    assert [e["entityId"] for e in history] == [event["entityId"]]
    assert "pii@globex.example" not in str(history)
    reader.close()
    scoped.close()
    # the same override does apply to acme's ordinary users
    plain = admin.user(acme, "plain", role)
    async with sse(server.url, plain) as stream:
        mine = {**hidden, "tenantId": acme, "entityId": unique("car")}
        assert admin.publish(mine).status_code == 202
        (seen,) = await stream.events(1)
    assert seen["entityId"] == mine["entityId"]
    assert seen["metadata"]["reporterEmail"] == "pii@globex.example"
