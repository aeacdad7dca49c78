"""Notifications over real HTTP with a live SSE subscription: the badge
pushed after create / read / read-all always equals unread-count; another
user's ids are 404 and change nothing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from support import Admin, ServerProcess, bearer, sse

pytestmark = pytest.mark.asyncio


def create(admin: Admin, tenant: str, user: str, title: str = "Hello") -> dict[str, Any]:
    body = {"tenantId": tenant, "userId": user, "type": "ticket", "title": title, "link": "/t/1"}
    response = admin.http.post("/api/notifications", json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def test_badges_pushed_live_always_equal_the_unread_count(
    server: ServerProcess, admin: Admin
) -> None:
    tenant = admin.tenant()
    token = admin.user(tenant, "u1", "member")
    api = httpx.Client(base_url=server.url, headers=bearer(token))

    def unread() -> int:
        return int(api.get("/api/notifications/unread-count").json()["count"])

    async with sse(server.url, token, params={"types": "notification.*"}) as stream:
        made = [create(admin, tenant, "u1", f"n{i}") for i in range(3)]
        for i, note in enumerate(made):
            (event,) = await stream.events(1)
            assert event["type"] == "notification.created"
            assert event["data"]["notificationId"] == note["id"]
            assert event["data"]["unreadCount"] == i + 1
        assert unread() == 3
        assert api.post("/api/notifications/read", json={"ids": [made[0]["id"]]}).json() == {
            "count": 2
        }
        (event,) = await stream.events(1)
        assert (
            event["type"] == "notification.read" and event["data"]["unreadCount"] == unread() == 2
        )
        assert api.post("/api/notifications/read-all").json() == {"count": 0}
        (event,) = await stream.events(1)
        assert event["data"] == {"userId": "u1", "unreadCount": 0, "all": True}
        assert unread() == 0


async def test_users_only_see_and_change_their_own(server: ServerProcess, admin: Admin) -> None:
    tenant = admin.tenant()
    alice, bob = admin.user(tenant, "alice", "member"), admin.user(tenant, "bob", "member")
    mine = create(admin, tenant, "alice")
    as_bob = httpx.Client(base_url=server.url, headers=bearer(bob))
    assert as_bob.get("/api/notifications").json()["items"] == []
    refused = as_bob.post("/api/notifications/read", json={"ids": [mine["id"]]})
    assert (
        refused.status_code == 404 and refused.headers["content-type"] == "application/problem+json"
    )
    as_alice = httpx.Client(base_url=server.url, headers=bearer(alice))
    (item,) = as_alice.get("/api/notifications").json()["items"]
    assert item["id"] == mine["id"] and item["read"] is False
    mixed = as_alice.post("/api/notifications/read", json={"ids": [mine["id"], "ntf_not_hers"]})
    assert mixed.status_code == 404
    assert as_alice.get("/api/notifications/unread-count").json() == {"count": 1}  # nothing changed
    async with sse(server.url, bob) as stream:
        create(admin, tenant, "alice", "only for alice")
        assert await stream.nothing_for(0.4)


async def test_listing_pages_newest_first_and_filters_unread(
    server: ServerProcess, admin: Admin
) -> None:
    tenant = admin.tenant()
    token = admin.user(tenant, "u", "member")
    made = [create(admin, tenant, "u", f"n{i}")["id"] for i in range(5)]
    api = httpx.Client(base_url=server.url, headers=bearer(token))
    api.post("/api/notifications/read", json={"ids": [made[4]]}).raise_for_status()
    seen: list[str] = []
    cursor = None
    while True:
        page = api.get(
            "/api/notifications", params={"limit": 2, **({"cursor": cursor} if cursor else {})}
        ).json()
        seen += [n["id"] for n in page["items"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert seen == list(reversed(made))
    unread = api.get("/api/notifications", params={"unread": "true"}).json()["items"]
    assert [n["id"] for n in unread] == list(reversed(made[:4]))


async def test_who_may_create_and_read(server: ServerProcess, admin: Admin) -> None:
    mine, theirs = admin.tenant(), admin.tenant()
    admin.user(theirs, "x", "member")
    key = admin.api_key(["publish"], tenant_id=mine)
    client = httpx.Client(base_url=server.url, headers=bearer(key))
    body = {"tenantId": theirs, "userId": "x", "type": "t", "title": "hi"}
    assert client.post("/api/notifications", json=body).status_code == 403
    assert (
        client.post("/api/notifications", json={**body, "tenantId": mine}).status_code == 404
    )  # no such user
    assert client.get("/api/notifications").status_code == 403  # keys have no inbox
    bad = admin.http.post("/api/notifications", json={"tenantId": mine, "userId": "x"})
    assert bad.status_code == 422 and bad.json()["field"] in ("/type", "/title")


async def test_the_sdk_creates_notifications(server: ServerProcess, admin: Admin) -> None:
    from tidings.sdk import AsyncTidingsClient, TidingsClient

    tenant = admin.tenant()
    token = admin.user(tenant, "u", "member")
    key = admin.api_key(["publish"], tenant_id=tenant)
    with TidingsClient(server.url, token=key) as client:
        made = client.notify("u", "From the sync SDK", link="/x")
    async with AsyncTidingsClient(server.url, token=key) as client:
        await client.notify("u", "From the async SDK")
    items = httpx.get(f"{server.url}/api/notifications", headers=bearer(token)).json()["items"]
    assert [n["title"] for n in items] == ["From the async SDK", "From the sync SDK"]
    assert items[1]["id"] == made["id"] and items[1]["link"] == "/x"
