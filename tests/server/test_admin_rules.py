"""The Integration Manager's rules pages over real HTTP (both backends):
the list with job counts, a rule created from the builder form (bad input
refused, nothing saved), Enable/Disable swapping the row, delete, packs,
the template preview and dry runs against a sample event and against the
last N events of the log, a tenant-bound session seeing only its tenant's
rules and events."""

from __future__ import annotations

import json
import re
from typing import Any

from admin_http import AdminUI
from support import Admin, ServerProcess, unique

NOTIFY = {"audience": "permission:tidings.admin", "title": "Done: {{ data.courseId }}"}


def completed(tenant_id: str, course: str, score: int = 90) -> dict[str, Any]:
    return {
        "type": "course.completed",
        "tenantId": tenant_id,
        "data": {
            "courseId": course,
            "userId": "u1",
            "completedAt": "2026-11-22T10:00:00Z",
            "score": score,
        },
    }


def builder_form(tenant: str | None, **changes: Any) -> dict[str, Any]:
    form = {
        "name": unique("rule"),
        "tenant": tenant or "",
        "priority": "5",
        "enabled": "on",
        "trigger": "course.completed",
        "conditions": json.dumps({"all": [{"path": "data.score", "op": "gte", "value": 80}]}),
        "action_type": "send_notification",
        "config": json.dumps(NOTIFY),
    }
    form.update(changes)
    return {k: v for k, v in form.items() if v is not None}


def api_rule(admin: Admin, rule_id: str) -> dict[str, Any]:
    answer = admin.http.get(f"/api/admin/rules/{rule_id}")
    answer.raise_for_status()
    return dict(answer.json())


def rule_ids(admin: Admin, tenant: str) -> list[str]:
    items = admin.http.get("/api/admin/rules", params={"tenantId": tenant}).json()["items"]
    return [r["id"] for r in items]


def test_a_rule_made_in_the_builder_is_listed_with_its_parts(
    server: ServerProcess, admin: Admin
) -> None:
    tenant = admin.tenant()
    ui = AdminUI(server.url)
    try:
        assert "Dry run" in ui.get("/admin/rules/new").text
        form = builder_form(tenant)
        made = ui.post("/admin/rules/new", form)
        assert made.status_code == 303, made.text
        (rule_id,) = rule_ids(admin, tenant)
        stored = api_rule(admin, rule_id)
        assert stored["name"] == form["name"] and stored["priority"] == 5 and stored["enabled"]
        assert stored["trigger"]["conditions"] == {
            "all": [{"path": "data.score", "op": "gte", "value": 80}]
        }
        page = ui.get("/admin/rules").text
        row = re.search(rf'<tr id="rule-{rule_id}".*?</tr>', page, re.S)
        assert row, "the rule has a row"
        for part in (
            "course.completed",
            "data.score ≥ 80",
            "send_notification",
            f"tenant {tenant}",
            ">5<",
            "enabled",
            "never",
        ):
            assert part in row.group(0), part
        edit = ui.get(f"/admin/rules/{rule_id}/edit").text
        assert form["name"] in edit and "data.score" in edit
        changed = ui.post(f"/admin/rules/{rule_id}/edit", {**form, "priority": "7"})
        assert changed.status_code == 303
        assert api_rule(admin, rule_id)["priority"] == 7
    finally:
        ui.close()


def test_bad_builder_input_names_the_field_and_saves_nothing(
    server: ServerProcess, admin: Admin
) -> None:
    tenant = admin.tenant()
    ui = AdminUI(server.url)
    try:
        cases = [
            ({"trigger": "no.such.type"}, "/trigger/type"),
            ({"conditions": "{oops"}, "conditions"),
            ({"conditions": json.dumps({"path": "data.x", "op": "almost"})}, "/trigger/conditions"),
            ({"priority": "high"}, "priority"),
            ({"config": json.dumps({"title": "no audience"})}, "/action/config/audience"),
            ({"action_type": "teleport"}, "/action/type"),
        ]
        for change, field in cases:
            answer = ui.post("/admin/rules/new", builder_form(tenant, **change))
            assert answer.status_code == 422, change
            assert f"<strong>{field}" in answer.text and "Nothing was saved" in answer.text, change
        assert rule_ids(admin, tenant) == []
    finally:
        ui.close()


def test_enable_disable_swap_the_row_and_delete_removes_the_rule(
    server: ServerProcess, admin: Admin
) -> None:
    tenant = admin.tenant()
    ui = AdminUI(server.url)
    try:
        ui.post("/admin/rules/new", builder_form(tenant))
        (rule_id,) = rule_ids(admin, tenant)
        row = ui.post(f"/admin/rules/{rule_id}/disable", htmx=True)
        assert row.status_code == 200 and row.text.lstrip().startswith(f'<tr id="rule-{rule_id}"')
        assert ">Enable</button>" in row.text and not api_rule(admin, rule_id)["enabled"]
        row = ui.post(f"/admin/rules/{rule_id}/enable", htmx=True)
        assert ">Disable</button>" in row.text and api_rule(admin, rule_id)["enabled"]
        plain = ui.post(f"/admin/rules/{rule_id}/disable")
        assert plain.status_code == 303 and plain.headers["location"] == "/admin/rules"
        assert not api_rule(admin, rule_id)["enabled"]
        assert ui.post(f"/admin/rules/{rule_id}/delete", {"csrf": ""}).status_code == 403
        assert rule_ids(admin, tenant) == [rule_id]  # refused: nothing changed
        gone = ui.post(f"/admin/rules/{rule_id}/delete", htmx=True)
        assert gone.status_code == 200 and gone.text == ""
        assert rule_ids(admin, tenant) == []
        assert ui.post(f"/admin/rules/{rule_id}/enable", htmx=True).status_code == 404
    finally:
        ui.close()


def test_the_list_counts_jobs_and_a_pack_loads(server: ServerProcess, admin: Admin) -> None:
    tenant = admin.tenant()
    ui = AdminUI(server.url)
    try:
        ui.post("/admin/rules/new", builder_form(tenant))
        (rule_id,) = rule_ids(admin, tenant)
        admin.publish(completed(tenant, "c-1")).raise_for_status()
        for _ in range(150):
            jobs = admin.http.get("/api/admin/jobs", params={"ruleId": rule_id}).json()["items"]
            if jobs and jobs[0]["status"] == "succeeded":
                break
            __import__("time").sleep(0.1)
        page = ui.get("/admin/rules").text
        row = re.search(rf'<tr id="rule-{rule_id}".*?</tr>', page, re.S)
        assert row and "1 ok" in row.group(0) and "<time" in row.group(0)
        packs = ui.get("/admin/rules").text
        assert "lms-awareness" in packs
        loaded = ui.post("/admin/rules/packs", {"pack": "lms-awareness", "tenant": tenant})
        assert loaded.status_code == 303 and "installed=lms-awareness" in loaded.headers["location"]
        assert len(rule_ids(admin, tenant)) > 1
        assert "installed" in ui.get(loaded.headers["location"]).text
    finally:
        ui.close()


def test_preview_and_dry_run_against_a_sample_run_nothing(
    server: ServerProcess, admin: Admin
) -> None:
    tenant = admin.tenant()
    ui = AdminUI(server.url)
    try:
        sample = json.dumps(completed(tenant, "c-77"))
        form = builder_form(tenant, sample=sample, source="sample")
        preview = ui.post("/admin/rules/preview", form, htmx=True).text
        assert "Done: c-77" in preview
        verdict = ui.post("/admin/rules/dry-run", form, htmx=True).text
        assert "1 would have run the action" in verdict and "Done: c-77" in verdict
        low = json.dumps(completed(tenant, "c-78", score=10))
        missed = ui.post("/admin/rules/dry-run", {**form, "sample": low}, htmx=True).text
        assert "0 would have run" in missed and "the conditions do not match" in missed
        unchecked = {k: v for k, v in form.items() if k != "enabled"}
        still = ui.post("/admin/rules/dry-run", unchecked, htmx=True).text
        assert "1 would have run the action" in still  # tried as it would run once enabled
        bad = ui.post("/admin/rules/dry-run", {**form, "sample": "[1]"}, htmx=True).text
        assert 'role="alert"' in bad and "<strong>sample" in bad
        assert rule_ids(admin, tenant) == []  # nothing saved, nothing run
    finally:
        ui.close()


def test_dry_run_over_the_last_n_events_of_the_log(server: ServerProcess, admin: Admin) -> None:
    mine, other = admin.tenant(), admin.tenant()
    for i, score in enumerate((95, 20, 85)):
        admin.publish(completed(mine, f"mine-{i}", score)).raise_for_status()
    admin.publish(completed(other, "other-0", 99)).raise_for_status()
    form = builder_form(mine, source="log", limit="2")
    ui = AdminUI(server.url)
    try:
        last_two = ui.post("/admin/rules/dry-run", form, htmx=True).text
        assert "the last 2 events" in last_two
        assert "mine-2" in last_two and "mine-1" in last_two and "mine-0" not in last_two
        assert "1 would have run the action" in last_two  # 85 matches, 20 does not
        assert "other-0" not in last_two  # the rule's tenant only
        too_many = ui.post("/admin/rules/dry-run", {**form, "limit": "501"}, htmx=True).text
        assert "<strong>limit" in too_many
        everyone = ui.post(
            "/admin/rules/dry-run", {**form, "tenant": "", "limit": "500"}, htmx=True
        )
        assert "other-0" in everyone.text and "mine-0" in everyone.text  # a global rule
    finally:
        ui.close()
    bound = AdminUI(server.url, key=admin.api_key(["admin"], mine))
    try:
        seen = bound.post(
            "/admin/rules/dry-run", {**form, "tenant": other, "limit": "500"}, htmx=True
        )
        assert "mine-0" in seen.text and "other-0" not in seen.text  # bound: its tenant only
        bound.post("/admin/rules/new", builder_form(other))  # lands in its own tenant
        admin_rule = AdminUI(server.url)
        admin_rule.post("/admin/rules/new", builder_form(other))
        admin_rule.close()
        (theirs,) = rule_ids(admin, other)
        page = bound.get("/admin/rules").text
        assert theirs not in page and f"tenant {other}" not in page
        assert all(r in page for r in rule_ids(admin, mine))
        assert bound.post(f"/admin/rules/{theirs}/disable", htmx=True).status_code == 404
        assert bound.get(f"/admin/rules/{theirs}/edit").status_code == 404
        assert api_rule(admin, theirs)["enabled"]
    finally:
        bound.close()


def test_editing_a_webhook_rule_never_shows_its_secret(server: ServerProcess, admin: Admin) -> None:
    tenant = admin.tenant()
    body = {
        "name": unique("hook"),
        "tenantId": tenant,
        "enabled": False,  # never calls out
        "trigger": {"type": "course.completed"},
        "action": {"type": "trigger_webhook", "config": {"url": "https://hooks.example.com/t"}},
    }
    made = admin.http.post("/api/admin/rules", json=body)
    made.raise_for_status()
    rule_id, secret = made.json()["id"], made.json()["secret"]
    ui = AdminUI(server.url)
    try:
        edit = ui.get(f"/admin/rules/{rule_id}/edit").text
        assert secret not in edit and secret[6:20] not in edit and "previousSecrets" not in edit
        form = builder_form(
            tenant,
            name=body["name"],
            enabled=None,
            action_type="trigger_webhook",
            config=json.dumps({"url": "https://hooks.example.com/other"}),
            conditions="",
        )
        assert ui.post(f"/admin/rules/{rule_id}/edit", form).status_code == 303
        stored = api_rule(admin, rule_id)
        assert stored["action"]["config"]["url"] == "https://hooks.example.com/other"
        assert stored["enabled"] is False and stored["trigger"]["conditions"] == {"all": []}
    finally:
        ui.close()
