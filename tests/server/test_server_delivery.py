"""Live delivery over real HTTP: seed 003's contract tests, isolation,
narrowing, resume without gap or duplicate, WebSocket, tickets."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson
import pytest
import websockets

from support import Admin, ServerProcess, bearer, sse, unique
from tidings.config import Settings

DEFAULT_RETRY_MS = Settings.model_fields["retry_ms"].default  # the servers run with it

pytestmark = pytest.mark.asyncio


def car(tenant: str, audiences: list[str] | None = None, **data: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": "qms.car.updated",
        "tenantId": tenant,
        "entityId": unique("car"),
        "data": data,
    }
    if audiences is not None:
        event["audiences"] = audiences
    return event


def publish(admin: Admin, event: dict[str, Any]) -> dict[str, Any]:
    response = admin.publish(event)
    assert response.status_code == 202, response.text
    return response.json()


@pytest.fixture
def org(admin: Admin) -> dict[str, Any]:
    """A tenant with seed 003's cast: a standard user, two managers, two
    resource-bound workers."""
    tenant = admin.tenant()
    admin.role("manager", ["manageAllocations", "qms.read"], tenant_id=tenant)
    admin.role("standard", ["qms.read"], tenant_id=tenant)
    return {
        "tenant": tenant,
        "standard": admin.user(tenant, "std", "standard"),
        "manager": admin.user(tenant, "mgr", "manager"),
        "manager2": admin.user(tenant, "mgr2", "manager"),
        "worker_r1": admin.user(tenant, "w1", "standard", resources=["r1"]),
        "worker_r2": admin.user(tenant, "w2", "standard", resources=["r2"]),
    }


# -- seed 003's contract tests, verbatim ------------------------------------


async def test_a_standard_user_does_not_receive_manager_planning_traffic(
    server: ServerProcess, admin: Admin, org: dict[str, Any]
) -> None:
    async with (
        sse(server.url, org["standard"]) as standard,
        sse(server.url, org["manager"]) as manager,
    ):
        publish(admin, car(org["tenant"], ["permission:manageAllocations"], plan=1))
        assert (await manager.events(1))[0]["data"] == {"plan": 1}
        assert await standard.nothing_for(0.5)


async def test_an_elevated_user_does_not_receive_another_users_personal_events(
    server: ServerProcess, admin: Admin, org: dict[str, Any]
) -> None:
    async with (
        sse(server.url, org["manager"]) as manager,
        sse(server.url, org["standard"]) as standard,
    ):
        publish(admin, car(org["tenant"], ["user:std"], personal=True))
        assert (await standard.events(1))[0]["data"] == {"personal": True}
        assert await manager.nothing_for(0.5)


async def test_multi_audience_planning_delivery_reaches_only_the_matching_manager_and_resource(
    server: ServerProcess, admin: Admin, org: dict[str, Any]
) -> None:
    async with (
        sse(server.url, org["manager"]) as manager,
        sse(server.url, org["worker_r1"]) as worker_r1,
        sse(server.url, org["worker_r2"]) as worker_r2,
        sse(server.url, org["standard"]) as standard,
    ):
        publish(admin, car(org["tenant"], ["permission:manageAllocations", "resource:r1"], slot=7))
        assert (await manager.events(1))[0]["data"] == {"slot": 7}
        assert (await worker_r1.events(1))[0]["data"] == {"slot": 7}
        assert await worker_r2.nothing_for(0.4)
        assert await standard.nothing_for(0.1)


# -- isolation and narrowing -------------------------------------------------


async def test_tenants_never_see_each_other(server: ServerProcess, admin: Admin) -> None:
    a, b = admin.tenant(), admin.tenant()
    admin.role("viewer", ["qms.read"])
    token_a, token_b = admin.user(a, "same-id", "viewer"), admin.user(b, "same-id", "viewer")
    async with sse(server.url, token_a) as sa, sse(server.url, token_b) as sb:
        publish(admin, car(a, ["role:viewer", "user:same-id"], n=1))
        assert (await sa.events(1))[0]["tenantId"] == a
        assert await sb.nothing_for(0.5)
    history = httpx.get(f"{server.url}/api/events/log", headers=bearer(token_b)).json()
    assert history["items"] == []


async def test_platform_users_follow_every_tenant_but_not_personal_events(
    server: ServerProcess, admin: Admin
) -> None:
    home, other = admin.tenant(), admin.tenant()
    role = unique("ops")
    admin.role(role, ["qms.read"])  # platform users take global role defaults only
    ops = admin.user(home, "ops", role, platform=True, platform_tenants=["*"])
    async with sse(server.url, ops) as stream:
        publish(admin, car(other, ["user:ops"], personal=True))
        publish(admin, car(other, ["permission:qms.read"], shared=True))
        (event,) = await stream.events(1)
        assert event["tenantId"] == other and event["data"] == {"shared": True}


async def test_types_filter_narrows_but_never_widens(
    server: ServerProcess, admin: Admin, org: dict[str, Any]
) -> None:
    async with sse(server.url, org["standard"], params={"types": "tasks.*,qms.car.*"}) as stream:
        publish(
            admin,
            {"type": "qms.audit.updated", "tenantId": org["tenant"], "audiences": ["user:std"]},
        )
        publish(admin, car(org["tenant"], ["user:mgr"], hidden=True))
        publish(admin, car(org["tenant"], ["user:std"], shown=True))
        assert (await stream.events(1))[0]["data"] == {"shown": True}


async def test_sse_contract_headers_first_message_and_aliases(
    server: ServerProcess, admin: Admin, org: dict[str, Any]
) -> None:
    async with sse(server.url, org["standard"], path="/qms/events") as stream:
        headers = stream.response.headers
        assert headers["content-type"].startswith("text/event-stream")
        assert headers["cache-control"] == "no-cache"
        assert headers["x-accel-buffering"] == "no"
        assert stream.connected["data"] == {"message": "Connected to event stream"}
        assert stream.connected["retry"] == DEFAULT_RETRY_MS  # the retry: line, for scripts
        event_id = publish(admin, car(org["tenant"], ["user:std"]))
        raw_id, message = await stream.next()
        assert raw_id == str(event_id["position"]) and message["id"] == event_id["id"]
        for key in (
            "id",
            "type",
            "entityType",
            "entityId",
            "action",
            "timestamp",
            "metadata",
            "tenantId",
            "audiences",
        ):
            assert key in message


# -- resume --------------------------------------------------------------------


async def test_resume_with_last_event_id_has_no_gap_and_no_duplicate(
    server: ServerProcess, admin: Admin, org: dict[str, Any]
) -> None:
    async with sse(server.url, org["standard"]) as stream:
        first = [publish(admin, car(org["tenant"], ["user:std"], n=i)) for i in range(3)]
        got = await stream.events(3)
        last_seen = got[-1]["position"]
    assert [e["position"] for e in got] == [f["position"] for f in first]
    missed = [publish(admin, car(org["tenant"], ["user:std"], n=i)) for i in range(3, 8)]
    publish(admin, car(org["tenant"], ["user:mgr"], n=99))  # not for us
    for how in ("header", "query"):
        headers = {"Last-Event-ID": str(last_seen)} if how == "header" else None
        params = {"lastEventId": str(last_seen)} if how == "query" else None
        async with sse(server.url, org["standard"], headers=headers, params=params) as resumed:
            replayed = await resumed.events(len(missed))
            assert [e["position"] for e in replayed] == [m["position"] for m in missed]
            live = publish(admin, car(org["tenant"], ["user:std"], n="live"))
            (after,) = await resumed.events(1)
            assert after["position"] == live["position"]
        missed.append(live)


async def test_replay_applies_authorization_at_replay_time(
    server: ServerProcess, admin: Admin
) -> None:
    tenant = admin.tenant()
    admin.role("member", [], tenant_id=tenant)
    token = admin.user(tenant, "u", "member", grant=["secret.read"])
    start = publish(admin, car(tenant, ["user:u"], n=0))["position"]
    publish(admin, car(tenant, ["permission:secret.read"], n=1))
    admin.user(tenant, "u", "member")  # revoke the grant
    async with sse(server.url, token, headers={"Last-Event-ID": str(start - 1)}) as stream:
        (only,) = await stream.events(1)
        assert only["data"] == {"n": 0}
        assert await stream.nothing_for(0.4)


async def test_a_resume_point_from_another_log_gets_a_reset(
    server: ServerProcess, admin: Admin, org: dict[str, Any]
) -> None:
    async with sse(server.url, org["standard"], headers={"Last-Event-ID": str(10**12)}) as stream:
        raw_id, message = await stream.next()
        assert message["type"] == "reset" and message["reason"] == "unknown_position"
        assert raw_id is not None and int(raw_id) < 10**12


# -- changes to users take effect on open streams ----------------------------------


async def test_granting_and_revoking_take_effect_on_open_streams(
    server: ServerProcess, admin: Admin
) -> None:
    tenant = admin.tenant()
    token = admin.user(tenant, "u", "nobody")
    async with sse(server.url, token) as stream:
        publish(admin, car(tenant, ["permission:audit.read"], n=1))
        assert await stream.nothing_for(0.3)
        admin.user(tenant, "u", "nobody", grant=["audit.read"])
        publish(admin, car(tenant, ["permission:audit.read"], n=2))
        assert (await stream.events(1))[0]["data"] == {"n": 2}
        admin.user(tenant, "u", "nobody")
        publish(admin, car(tenant, ["permission:audit.read"], n=3))
        assert await stream.nothing_for(0.3)


async def test_role_default_changes_reach_open_streams(server: ServerProcess, admin: Admin) -> None:
    tenant = admin.tenant()
    token = admin.user(tenant, "u", "auditor")
    async with sse(server.url, token) as stream:
        admin.role("auditor", ["audit.read"], tenant_id=tenant)
        publish(admin, car(tenant, ["permission:audit.read"], n=1))
        assert (await stream.events(1))[0]["data"] == {"n": 1}


async def test_deleting_a_user_closes_their_stream_and_reconnects_get_204(
    server: ServerProcess, admin: Admin
) -> None:
    tenant = admin.tenant()
    token = admin.user(tenant, "gone", "member")
    async with sse(server.url, token) as stream:
        assert admin.http.delete(f"/api/admin/tenants/{tenant}/users/gone").status_code == 204
        _id, message = await stream.next()
        assert message == {"type": "closed", "reason": "user_deleted"}
    response = httpx.get(
        f"{server.url}/api/events", headers={**bearer(token), "Last-Event-ID": "1"}
    )
    assert response.status_code == 204
    assert httpx.get(f"{server.url}/api/events/log", headers=bearer(token)).status_code == 403


# -- tickets and WebSocket ---------------------------------------------------------


async def test_stream_tickets_are_single_use(
    server: ServerProcess, admin: Admin, org: dict[str, Any]
) -> None:
    response = httpx.post(f"{server.url}/api/events/tickets", headers=bearer(org["standard"]))
    assert response.status_code == 201
    ticket = response.json()["ticket"]
    assert response.json()["expiresIn"] > 0
    async with sse(server.url, params={"ticket": ticket}) as stream:
        publish(admin, car(org["tenant"], ["user:std"], via="ticket"))
        assert (await stream.events(1))[0]["data"] == {"via": "ticket"}
    replay = httpx.get(f"{server.url}/api/events", params={"ticket": ticket})
    assert replay.status_code == 401
    assert replay.headers["content-type"] == "application/problem+json"
    forged = httpx.get(f"{server.url}/api/events", params={"ticket": "tkt_forged"})
    assert forged.status_code == 401
    # tickets are for users; service keys cannot mint them
    assert (
        httpx.post(f"{server.url}/api/events/tickets", headers=admin.http.headers).status_code
        == 403
    )


async def test_websocket_carries_the_same_stream(
    server: ServerProcess, admin: Admin, org: dict[str, Any]
) -> None:
    url = server.url.replace("http", "ws") + "/ws/events"
    headers = bearer(org["standard"])
    async with websockets.connect(url, additional_headers=headers) as ws:
        first = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
        assert first["type"] == "connected" and first["retry"] == DEFAULT_RETRY_MS
        publish(admin, car(org["tenant"], ["user:mgr"], hidden=True))
        sent = publish(admin, car(org["tenant"], ["user:std"], ws=True))
        message = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
        assert message["position"] == sent["position"] and message["data"] == {"ws": True}
    ticket = httpx.post(f"{server.url}/api/events/tickets", headers=headers).json()["ticket"]
    async with websockets.connect(
        f"{url}?ticket={ticket}&lastEventId={sent['position'] - 1}"
    ) as ws:
        first = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
        replayed = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
        assert first["type"] == "connected" and replayed["position"] == sent["position"]
    with pytest.raises(websockets.InvalidStatus):
        async with websockets.connect(url, additional_headers=bearer("forged.jwt.token")):
            pass
