"""``/admin/log`` over real HTTP with an admin session: the filters, the
tail fragment the page polls, an event's page with its jobs, the NDJSON
export, and a tenant-bound key that sees only its tenant."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import orjson

from admin_http import AdminUI
from support import Admin, ServerProcess, unique
from tidings.http.manager.log import TAIL_ROWS
from tidings.services.history import TAIL_SHARED_S

POSITION = re.compile(r'data-position="(\d+)"')
TAIL_AFTER = re.compile(r'id="log-tail"[^>]*hx-get="[^"]*after=(\d+)')


def car(tenant: str, entity_id: str, type_: str = "qms.car.updated") -> dict[str, Any]:
    return {"type": type_, "tenantId": tenant, "entityType": "car", "entityId": entity_id}


def publish(admin: Admin, tenant: str, entity_id: str, type_: str = "qms.car.updated") -> int:
    answer = admin.publish(car(tenant, entity_id, type_))
    assert answer.status_code == 202, answer.text
    return int(answer.json()["position"])


def shown(page: str) -> list[int]:
    return [int(p) for p in POSITION.findall(page)]


def next_rows(ui: AdminUI, params: dict[str, str]) -> httpx.Response:
    """The tail's answer once it has rows: watchers of one tail share its
    newest page for up to a second (History.TAIL_SHARED_S), as the page's
    poller waits for them."""
    deadline = time.monotonic() + 5 * TAIL_SHARED_S
    while True:
        answer = ui.get("/admin/log/tail", params=params)
        if shown(answer.text) or time.monotonic() > deadline:
            return answer
        time.sleep(0.1)


def test_the_log_page_filters_and_tails(server: ServerProcess, admin: Admin) -> None:
    tenant = admin.tenant()
    first = publish(admin, tenant, "car-alpha-1")
    second = publish(admin, tenant, "car-beta-2")
    ui = AdminUI(server.url)
    try:
        page = ui.get("/admin/log", params={"tenantId": tenant})
        assert page.status_code == 200
        assert shown(page.text) == [second, first]  # newest first
        assert f'href="/admin/log/export?tenantId={tenant}"' in page.text
        by_text = ui.get("/admin/log", params={"tenantId": tenant, "entityIdContains": "beta"})
        assert shown(by_text.text) == [second]
        by_type = ui.get("/admin/log", params={"tenantId": tenant, "types": "qms.dash*"})
        assert shown(by_type.text) == [] and "No events match yet" in by_type.text
        since = ui.get("/admin/log", params={"tenantId": tenant, "since": "2100-01-01T00:00"})
        assert shown(since.text) == []
        after = TAIL_AFTER.search(page.text)
        assert after is not None and int(after.group(1)) >= second
        third = publish(admin, tenant, "car-gamma-3")
        tail = next_rows(ui, {"tenantId": tenant, "after": after.group(1)})
        assert tail.status_code == 200 and shown(tail.text) == [third]
        moved = TAIL_AFTER.search(tail.text)
        assert moved is not None and int(moved.group(1)) >= third
        idle = ui.get("/admin/log/tail", params={"tenantId": tenant, "after": moved.group(1)})
        assert shown(idle.text) == [] and "left out" not in idle.text
        # a burst bigger than one poll: the newest rows, and the gap said
        burst = admin.http.post(
            "/api/events/batch",
            json={"events": [car(tenant, f"car-burst-{i}") for i in range(TAIL_ROWS + 5)]},
        )
        burst.raise_for_status()
        positions = [r["position"] for r in burst.json()["results"]]
        busy = next_rows(ui, {"tenantId": tenant, "after": moved.group(1)})
        assert shown(busy.text) == positions[::-1][:TAIL_ROWS] and "left out" in busy.text
    finally:
        ui.close()


def test_bad_filters_name_the_field_and_show_nothing(server: ServerProcess) -> None:
    ui = AdminUI(server.url)
    try:
        page = ui.get("/admin/log", params={"since": "yesterday"})
        assert page.status_code == 422
        assert 'role="alert"' in page.text and "Since (UTC)" in page.text
        assert shown(page.text) == []
    finally:
        ui.close()


def test_the_event_page_shows_envelope_audiences_rules_and_jobs(
    server: ServerProcess, admin: Admin
) -> None:
    tenant = admin.tenant()
    rule = {
        "name": unique("log-page"),
        "tenantId": tenant,
        "trigger": {"type": "qms.car.updated"},
        "action": {"type": "send_notification", "config": {"audience": "user:u1", "title": "hi"}},
    }
    made = admin.http.post("/api/admin/rules", json=rule)
    assert made.status_code == 201, made.text
    rule_id = made.json()["id"]
    answer = admin.publish(
        {"type": "qms.car.updated", "tenantId": tenant, "audiences": ["role:manager"]}
    )
    event_id = answer.json()["id"]
    ui = AdminUI(server.url)
    try:
        page = ui.get(f"/admin/log/{event_id}", params={"tenantId": tenant})
        assert page.status_code == 200, page.text
        assert "qms.car.updated" in page.text and "role:manager" in page.text
        assert rule_id in page.text  # the rule that matched, and its job
        assert "Rules matched" in page.text and "No jobs" not in page.text
        assert "&#34;tenantId&#34;" in page.text or '"tenantId"' in page.text
        missing = ui.get("/admin/log/evt_nope", params={"tenantId": tenant})
        assert missing.status_code == 404
    finally:
        ui.close()


def ndjson(body: bytes) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in body.splitlines() if line]


def test_the_export_link_downloads_the_filtered_log(server: ServerProcess, admin: Admin) -> None:
    tenant = admin.tenant()
    positions = [publish(admin, tenant, f"car-{n}") for n in range(3)]
    ui = AdminUI(server.url)
    try:
        answer = ui.get("/admin/log/export", params={"tenantId": tenant})
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "application/x-ndjson"
        assert "attachment" in answer.headers["content-disposition"]
        assert [e["position"] for e in ndjson(answer.content)] == positions
        narrowed = ui.get(
            "/admin/log/export", params={"tenantId": tenant, "entityIdContains": "car-1"}
        )
        assert [e["position"] for e in ndjson(narrowed.content)] == [positions[1]]
    finally:
        ui.close()


def test_a_tenant_bound_key_sees_only_its_tenant(server: ServerProcess, admin: Admin) -> None:
    mine, other = admin.tenant(), admin.tenant()
    own = publish(admin, mine, unique("car"))
    foreign_answer = admin.publish({"type": "qms.car.updated", "tenantId": other})
    foreign_id = foreign_answer.json()["id"]
    ui = AdminUI(server.url, key=admin.api_key(["admin"], tenant_id=mine))
    try:
        page = ui.get("/admin/log")
        assert page.status_code == 200
        assert shown(page.text)[0] == own and f">{other}<" not in page.text
        assert set(shown(page.text)) <= set(shown(ui.get("/admin/log").text))
        exported = ndjson(ui.get("/admin/log/export").content)
        assert {e["tenantId"] for e in exported} == {mine}
        refused = ui.get("/admin/log", params={"tenantId": other})
        assert refused.status_code == 422 and shown(refused.text) == []
        hidden = ui.get(f"/admin/log/{foreign_id}", params={"tenantId": other})
        assert hidden.status_code in (403, 404)
        assert ui.get("/admin/log/export", params={"tenantId": other}).status_code == 403
    finally:
        ui.close()
