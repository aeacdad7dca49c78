"""The hub embedded in a host ASGI app (docs/EMBEDDING.md): a FastAPI host
and a Starlette host (``tests/data/hosts``), each with a route of its own,
run by uvicorn as real servers with the hub mounted at the root
(``Mount("/", hub)`` after the host's routes) and under ``/hub``. In every
placement the hub's streams, publish paths, API, docs and admin UI answer
below the prefix, and the host's lifespan starts and stops the node."""

from __future__ import annotations

import asyncio
import json
import re
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import websockets

from embedding import Host, running_host
from support import ADMIN_KEY, JWT_SECRET, Admin, bearer, sse, unique
from tidings import create_hub

PLACEMENTS = [("fastapi", ""), ("fastapi", "/hub"), ("starlette", ""), ("starlette", "/hub")]
IDS = [f"{kind}{prefix or '-root'}" for kind, prefix in PLACEMENTS]
ADMIN_PAGES = ["/admin", "/admin/log", "/admin/jobs", "/admin/rules", "/admin/tenants"]
# Every URL attribute of the admin pages' HTML.
URL_ATTRIBUTE = re.compile(r'\b(href|src|action|hx-get|hx-post|data-series)="([^"]*)"')


@pytest.fixture(scope="module", params=PLACEMENTS, ids=IDS)
def host(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Host]:
    kind, prefix = request.param
    with running_host(tmp_path_factory.mktemp(f"host-{kind}"), kind, prefix) as running:
        yield running


@pytest.fixture
def hub_admin(host: Host) -> Iterator[Admin]:
    client = Admin(host.hub)  # httpx joins "/api/..." below the prefix
    yield client
    client.close()


def car(tenant: str, user: str) -> dict[str, Any]:
    return {
        "type": "qms.car.updated",
        "tenantId": tenant,
        "entityId": unique("car"),
        "audiences": [f"user:{user}"],
    }


async def ws_next(ws: Any) -> dict[str, Any]:
    message: dict[str, Any] = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
    return message


def test_the_host_route_answers_beside_the_started_hub(host: Host) -> None:
    hello = httpx.get(f"{host.server.url}/host/hello", timeout=10)
    assert hello.status_code == 200
    assert hello.json()["host"] == host.kind and hello.json()["hubStarted"] is True
    assert hello.json()["tasks"] > 0  # the node's tasks run in the host's loop
    ready = httpx.get(f"{host.hub}/readyz", timeout=10)
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    if host.prefix:  # under a prefix the hub answers there only
        assert httpx.get(f"{host.server.url}/readyz", timeout=10).status_code == 404


async def test_publish_reaches_sse_and_websocket_and_resumes(host: Host, hub_admin: Admin) -> None:
    tenant = hub_admin.tenant()
    token = hub_admin.user(tenant, "u1", grant=["qms.read"])
    ws_url = host.hub.replace("http://", "ws://") + "/ws/events"
    async with (
        sse(host.hub, token) as stream,
        websockets.connect(ws_url, additional_headers=bearer(token)) as ws,
    ):
        assert (await ws_next(ws))["type"] == "connected"
        one = hub_admin.publish(car(tenant, "u1"))
        assert one.status_code == 202, one.text
        batch = hub_admin.http.post(
            "/api/events/batch", json={"events": [car(tenant, "u1"), car(tenant, "u1")]}
        )
        assert batch.status_code == 202, batch.text
        positions = [one.json()["position"], *(e["position"] for e in batch.json()["results"])]
        assert [e["position"] for e in await stream.events(3)] == positions
        assert [(await ws_next(ws))["position"] for _ in positions] == positions

    async with sse(host.hub, token, headers={"Last-Event-ID": str(positions[0])}) as resumed:
        assert [e["position"] for e in await resumed.events(2)] == positions[1:]
    async with websockets.connect(
        f"{ws_url}?lastEventId={positions[1]}", additional_headers=bearer(token)
    ) as ws:
        assert (await ws_next(ws))["type"] == "connected"
        assert (await ws_next(ws))["position"] == positions[2]


def test_a_refused_publish_is_a_problem_naming_the_mounted_path(
    host: Host, hub_admin: Admin
) -> None:
    tenant = hub_admin.tenant()
    refused = hub_admin.publish({"type": "qms.car.updated", "tenantId": tenant, "entityId": 7})
    assert refused.status_code == 422
    problem = refused.json()
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert problem["instance"] == f"{host.prefix}/api/events" and problem["field"] == "/entityId"
    log = hub_admin.http.get("/api/events/log", params={"tenantId": tenant})
    assert log.status_code == 200 and log.json()["items"] == []  # nothing stored
    for alias in ("/api/events", "/qms/events"):  # the raw SSE handler answers, not a 404
        anonymous = httpx.get(f"{host.hub}{alias}", timeout=10)
        assert anonymous.status_code == 401
        assert anonymous.json()["instance"] == f"{host.prefix}{alias}"


def test_unread_count_answers_for_a_user_token(host: Host, hub_admin: Admin) -> None:
    tenant = hub_admin.tenant()
    token = hub_admin.user(tenant, "u1")
    body = {"tenantId": tenant, "userId": "u1", "type": "ticket", "title": "Hi", "link": "/t/1"}
    assert hub_admin.http.post("/api/notifications", json=body).status_code == 201
    count = httpx.get(f"{host.hub}/api/notifications/unread-count", headers=bearer(token))
    assert count.status_code == 200 and count.json() == {"count": 1}


def test_docs_and_openapi_document_point_below_the_prefix(host: Host) -> None:
    docs = httpx.get(f"{host.hub}/docs", timeout=10)
    assert docs.status_code == 200
    assert f"'{host.prefix}/openapi.json'" in docs.text
    bundle = f"{host.prefix}/static/swagger/swagger-ui-bundle.js"
    assert f'"{bundle}"' in docs.text
    assert httpx.get(f"{host.server.url}{bundle}", timeout=10).status_code == 200

    document = httpx.get(f"{host.hub}/openapi.json", timeout=10).json()
    assert {
        "/api/events",
        "/api/events/batch",
        "/ws/events",
        "/api/notifications/unread-count",
    } <= set(document["paths"])
    if host.prefix:  # Swagger UI's "Try it out" calls {server}{path}
        assert document["servers"] == [{"url": host.prefix}]
    else:
        assert "servers" not in document


def page_urls(html: str) -> list[str]:
    """The URLs of this app in a page (absolute paths; not #fragments)."""
    return [value for _name, value in URL_ATTRIBUTE.findall(html) if value.startswith("/")]


def test_admin_login_links_and_cookie_stay_below_the_prefix(host: Host) -> None:
    prefix, origin = host.prefix, host.server.url
    with httpx.Client(base_url=origin, timeout=10) as browser:
        away = browser.get(f"{prefix}/admin/log")
        assert away.status_code == 303
        assert away.headers["location"] == f"{prefix}/admin/login?next=/admin/log"
        foreign = browser.post(
            f"{prefix}/admin/login",
            data={"key": ADMIN_KEY, "next": "/admin/log"},
            headers={"Origin": "http://evil.example"},
        )
        assert foreign.status_code == 403 and "tidings_admin" not in foreign.cookies

        login = browser.post(
            f"{prefix}/admin/login",
            data={"key": ADMIN_KEY, "next": "/admin/log"},
            headers={"Origin": origin},
        )
        assert login.status_code == 303 and login.headers["location"] == f"{prefix}/admin/log"
        assert f"Path={prefix}/admin;" in login.headers["set-cookie"]

        seen: set[str] = set()
        for path in ADMIN_PAGES:
            page = browser.get(prefix + path)
            assert page.status_code == 200, (path, page.text[:300])
            urls = page_urls(page.text)
            assert urls and all(url.startswith(f"{prefix}/") for url in urls), urls
            assert not prefix or not [u for u in urls if u.startswith(("/admin", "/static"))]
            seen.update(u for u in urls if "/static/" in u)
        for asset in sorted(seen):  # the pages' scripts and styles load from there
            assert browser.get(asset).status_code == 200, asset

        csrf = re.search(r'name="csrf" value="([^"]+)"', browser.get(f"{prefix}/admin").text)
        assert csrf is not None
        out = browser.post(
            f"{prefix}/admin/logout", data={"csrf": csrf.group(1)}, headers={"Origin": origin}
        )
        assert out.status_code == 303 and out.headers["location"] == f"{prefix}/admin/login"
        assert f"Path={prefix}/admin" in out.headers["set-cookie"]


def test_front_door_and_live_page_point_below_the_prefix(host: Host) -> None:
    front = httpx.get(f"{host.hub}/", timeout=10)
    assert front.status_code == 200
    assert f'href="{host.prefix}/live"' in front.text and f'href="{host.prefix}/docs"' in front.text
    live = httpx.get(f"{host.hub}/live", timeout=10)
    assert live.status_code == 200 and f'data-hub="{host.prefix}"' in live.text
    scripts = re.findall(r'<script src="([^"?]+)', live.text)
    assert scripts == [f"{host.prefix}/static/tidings.js", f"{host.prefix}/static/live.js"]
    for script in scripts:
        assert httpx.get(f"{host.server.url}{script}", timeout=10).status_code == 200


@pytest.mark.parametrize("kind", ["fastapi", "starlette"])
def test_the_host_lifespan_starts_and_stops_the_node(tmp_path: Path, kind: str) -> None:
    with running_host(tmp_path, kind, "/hub") as running:
        assert httpx.get(f"{running.server.url}/host/hello").json()["hubStarted"] is True
        assert not running.report.exists()
    # uvicorn ends by raising the SIGTERM it caught, after a clean shutdown
    assert running.server.proc is not None and running.server.proc.returncode == -signal.SIGTERM
    report = json.loads(running.report.read_text())  # written after hub.lifespan() ended
    assert report == {"started": False, "tasks": []}
    assert "Traceback" not in (tmp_path / "host.log").read_text()


async def drive_lifespan(app: Any, *messages: str) -> list[str]:
    """Send lifespan ``messages`` to ``app`` as a server would; its answers."""
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    answers: list[str] = []
    for message in messages:
        inbox.put_nowait({"type": message})

    async def send(message: dict[str, Any]) -> None:
        answers.append(message["type"])

    await app({"type": "lifespan", "asgi": {"version": "3.0"}}, inbox.get, send)
    return answers


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Any]:
    yield create_hub(
        database_url=f"sqlite:///{tmp_path / 'hub.db'}", admin_key=ADMIN_KEY, jwt_secret=JWT_SECRET
    )


async def test_lifespan_contexts_nest_and_overlap_the_servers(hub: Any) -> None:
    """The first context in starts the node, the last out stops it, whether
    the contexts are the host's or the server's lifespan events to the hub."""
    assert hub.tidings.started is False
    async with hub.lifespan() as entered:
        assert entered is hub and hub.tidings.started is True
        async with hub.lifespan():
            assert hub.tidings.started is True
        assert hub.tidings.started is True  # the outer context still holds it
        answers = await drive_lifespan(hub, "lifespan.startup", "lifespan.shutdown")
        assert answers == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
        assert hub.tidings.started is True  # the server's shutdown left the host's node
    assert hub.tidings.started is False


async def test_the_servers_lifespan_alone_runs_the_node(hub: Any) -> None:
    """``tidings serve`` (no host): the hub's own lifespan starts and stops it."""
    seen: list[bool] = []
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def send(message: dict[str, Any]) -> None:
        seen.append(hub.tidings.started)
        if message["type"] == "lifespan.startup.complete":
            inbox.put_nowait({"type": "lifespan.shutdown"})

    inbox.put_nowait({"type": "lifespan.startup"})
    await hub({"type": "lifespan", "asgi": {"version": "3.0"}}, inbox.get, send)
    assert seen == [True, False]
