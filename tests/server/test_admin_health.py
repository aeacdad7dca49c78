"""The Health page over real HTTP (``/admin``, its panel and its series):
a session is needed, figures move after publishing, a tenant-bound admin
sees its tenant only, two processes on one PostgreSQL database both show;
and the public front door ``/``."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from admin_http import AdminUI
from support import Admin, ServerProcess, bearer, running_server

NOTIFY = {"type": "send_notification", "config": {"audience": "user:u1", "title": "hi"}}


def event(tenant: str) -> dict[str, Any]:
    return {
        "type": "course.completed",
        "tenantId": tenant,
        "data": {"courseId": "c-1", "userId": "u1", "completedAt": "2026-11-22T10:00:00Z"},
    }


def series(ui: AdminUI) -> dict[str, Any]:
    answer = ui.get("/admin/health/series")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = answer.json()
    return body


def eventually(
    ui: AdminUI, holds: Callable[[dict[str, Any]], bool], timeout: float = 30
) -> dict[str, Any]:
    """The series once ``holds`` is true of it (figures are cached 2 s,
    processes announce every 10 s)."""
    deadline = time.monotonic() + timeout
    body = series(ui)
    while not holds(body):
        assert time.monotonic() < deadline, body
        time.sleep(0.5)
        body = series(ui)
    return body


@pytest.mark.parametrize("path", ["/admin", "/admin/health/series", "/admin/health/panel"])
def test_the_health_page_and_its_series_need_a_session(server: ServerProcess, path: str) -> None:
    answer = httpx.get(f"{server.url}{path}", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/admin/login?next=")
    assert "published" not in answer.text


def test_figures_move_after_publishing(server: ServerProcess, admin: Admin) -> None:
    tenant = admin.tenant()
    ui = AdminUI(server.url)
    try:
        before = series(ui)
        assert before["scope"] == "node"
        assert {c["name"]: c["state"] for c in before["readiness"]}["Database"] == "ok"
        assert before["figures"]["storage_bytes"] > 0
        positions = [admin.publish(event(tenant)).json()["position"] for _ in range(25)]
        after = eventually(
            ui,
            lambda b: (
                b["figures"]["log_head"] >= max(positions)
                and max(b["series"]["published_s"], default=0) > 0
            ),
        )
        assert after["now"] > before["now"]
        assert len(after["series"]["at"]) == len(after["series"]["published_s"]) > 0
        assert after["series"]["queue"], "the queue depth is recorded while someone looks"
        mine = [n for n in after["nodes"] if n["this"]]
        assert len(mine) == 1 and mine[0]["node"] == after["node"]
        page = ui.get("/admin").text
        for label in (
            "Connections",
            "Published",
            "Latency p50 / p95",
            "Job queue",
            "Dead letters",
            "Storage",
            "Log head",
            "Readiness",
            "Processes",
        ):
            assert label in page, label
        assert 'data-chart="rates"' in page and "uPlot.iife.min.js" in page
        assert "<script>" not in page and "style=" not in page
        panel = ui.get("/admin/health/panel", headers={"HX-Request": "true"})
        assert panel.status_code == 200 and "<html" not in panel.text
        assert f"{max(positions):,}" in panel.text  # the log head, formatted
    finally:
        ui.close()


@pytest.fixture(scope="module")
def idle_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server without a worker: the jobs rules queue stay pending."""
    tmp = tmp_path_factory.mktemp("health-idle")
    with running_server(tmp, env={"TIDINGS_RUN_JOBS": "no"}) as srv:
        yield srv


def test_a_tenant_bound_admin_sees_its_own_tenant_only(idle_server: ServerProcess) -> None:
    admin = Admin(idle_server.url)
    busy, quiet = admin.tenant(), admin.tenant()
    rule = {
        "name": "notify",
        "tenantId": busy,
        "enabled": True,
        "trigger": {"type": "course.completed"},
        "action": NOTIFY,
    }
    admin.http.post("/api/admin/rules", json=rule).raise_for_status()
    last = [admin.publish(event(busy)).json()["position"] for _ in range(3)][-1]
    busy_ui = AdminUI(idle_server.url, key=admin.api_key(["admin"], tenant_id=busy))
    quiet_ui = AdminUI(idle_server.url, key=admin.api_key(["admin"], tenant_id=quiet))
    global_ui = AdminUI(idle_server.url)
    try:
        mine = eventually(busy_ui, lambda b: b["figures"]["queued"] == 3)
        assert mine["scope"] == "tenant" and mine["tenant"] == busy
        assert mine["figures"]["log_head"] == last
        assert mine["figures"]["lag_s"] is not None and mine["figures"]["lag_s"] >= 0
        for node_wide in ("series", "nodes", "now_rates"):
            assert node_wide not in mine
        assert mine["figures"]["storage_bytes"] is None
        workers = {c["name"]: c for c in mine["readiness"]}["Workers"]
        assert workers["state"] == "warn" and "no worker" in workers["detail"]

        theirs = series(quiet_ui)
        assert theirs["tenant"] == quiet
        assert theirs["figures"]["queued"] == 0 and theirs["figures"]["log_head"] == 0
        assert theirs["figures"]["dead"] == 0 and theirs["figures"]["lag_s"] is None
        page = quiet_ui.get("/admin").text
        assert "data-chart" not in page and "Storage" not in page and "Processes" not in page
        assert f"Tenant <strong>{quiet}</strong>" in page and "Readiness" in page

        everything = eventually(global_ui, lambda b: b["figures"]["queued"] >= 3)
        assert everything["figures"]["log_head"] >= last and "series" in everything
    finally:
        for ui in (busy_ui, quiet_ui, global_ui):
            ui.close()
        admin.close()


def test_two_processes_on_one_postgres_database_both_show(pg_url: str, tmp_path: Path) -> None:
    first = ServerProcess(pg_url).start(tmp_path / "first.log")
    second = None
    try:
        second = ServerProcess(pg_url).start(tmp_path / "second.log")
        ui_first, ui_second = AdminUI(first.url), AdminUI(second.url)
        try:
            seen = eventually(ui_first, lambda b: len(b["nodes"]) == 2)
            ids = {n["node"] for n in seen["nodes"]}
            assert seen["node"] in ids and len(ids) == 2
            other = (ids - {seen["node"]}).pop()
            assert eventually(ui_second, lambda b: b["node"] == other and len(b["nodes"]) == 2)
            # Events published through the second process show as its rate on the first.
            admin = Admin(second.url)
            tenant = admin.tenant()
            for _ in range(30):
                admin.publish(event(tenant)).raise_for_status()
            admin.close()

            def second_published(body: dict[str, Any]) -> bool:
                row = next(n for n in body["nodes"] if n["node"] == other)
                return any((v or 0) > 0 for v in row["published_series"])

            moved = eventually(ui_first, second_published, timeout=40)
            page = ui_first.get("/admin").text
            assert other in page and moved["node"] in page
        finally:
            ui_first.close()
            ui_second.close()
    finally:
        if second is not None:
            second.stop()
        first.stop()


def test_the_front_door_says_what_this_server_is(server: ServerProcess) -> None:
    answer = httpx.get(f"{server.url}/")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in answer.headers["content-security-policy"]
    for link in ("/admin", "/docs", "/live", "/healthz", "/readyz", "/metrics"):
        assert f'href="{link}"' in answer.text, link
    assert "Tidings" in answer.text and "admin.css" in answer.text
    assert "/" not in httpx.get(f"{server.url}/openapi.json").json()["paths"]


def test_metrics_and_the_health_page_both_get_every_latency(
    server: ServerProcess, admin: Admin
) -> None:
    """/metrics reads the hub's cumulative histogram; the health sampler
    drains its own share: whichever looks first, both see the deliveries,
    and one scrape shows every delivery made before it."""
    tenant = admin.tenant()
    token = admin.user(tenant, "alice", grant=["qms.read"])
    car = {"type": "qms.car.updated", "tenantId": tenant, "entityId": "car-1"}

    def latency_count() -> float:
        text = httpx.get(f"{server.url}/metrics").text
        line = next(
            x for x in text.splitlines() if x.startswith("tidings_delivery_latency_seconds_count")
        )
        return float(line.split()[-1])

    ui = AdminUI(server.url)
    try:
        before = latency_count()
        with httpx.Client(base_url=server.url, timeout=15) as client:
            with client.stream("GET", "/api/events", headers=bearer(token)) as stream:
                for _ in range(5):
                    admin.publish(car).raise_for_status()
                received = 0
                for line in stream.iter_lines():
                    received += line.startswith('data: {"id"')  # not the "connected" frame
                    if received == 5:
                        break
        assert latency_count() >= before + 5  # one scrape right away: it has them all
        body = eventually(ui, lambda b: any(v is not None for v in b["series"]["p95_ms"]))
        assert max(v for v in body["series"]["p95_ms"] if v is not None) >= 0
    finally:
        ui.close()
