"""The Integration Manager's catalog pages over real HTTP (both backends):
the search fragment, a type's page (schemas, example, recent events as the
session may see them), tenant types created and versioned from the form,
bad input refused with nothing changed, tenant-bound sessions."""

from __future__ import annotations

import json

from admin_http import AdminUI
from support import Admin, ServerProcess, unique

SCHEMA = {
    "type": "object",
    "required": ["tenantId", "widgetId"],
    "properties": {"tenantId": {"type": "string"}, "widgetId": {"type": "string"}},
}


def completed(tenant_id: str, course: str) -> dict[str, object]:
    return {
        "type": "course.completed",
        "tenantId": tenant_id,
        "data": {"courseId": course, "userId": "u1", "completedAt": "2026-11-22T10:00:00Z"},
    }


def test_the_catalog_lists_types_with_arabic_and_the_search_fragment_filters(
    server: ServerProcess,
) -> None:
    ui = AdminUI(server.url)
    try:
        page = ui.get("/admin/catalog")
        assert page.status_code == 200
        assert "course.completed" in page.text and "phishing" in page.text
        assert '<span lang="ar" dir="rtl">' in page.text
        assert 'type="search"' in page.text and "input changed delay:200ms, search" in page.text
        rows = ui.get(
            "/admin/catalog/search", params={"q": "course"}, headers={"HX-Request": "true"}
        )
        assert rows.status_code == 200 and "<html" not in rows.text  # a fragment
        assert "course.completed" in rows.text and "phishing" not in rows.text
        by_module = ui.get("/admin/catalog/search", params={"q": "lms"}).text
        assert "student.enrolled" in by_module
        by_description = ui.get("/admin/catalog/search", params={"q": "certificate"}).text
        assert "course.completed" in by_description and "course.created" not in by_description
        nothing = ui.get("/admin/catalog/search", params={"q": "no-such-thing-xyz"}).text
        assert "No event type matches" in nothing
    finally:
        ui.close()


def test_a_type_page_shows_schemas_an_example_and_its_recent_events(
    server: ServerProcess, admin: Admin
) -> None:
    tenant = admin.tenant()
    course = unique("course")
    admin.publish(completed(tenant, course)).raise_for_status()
    ui = AdminUI(server.url)
    try:
        page = ui.get("/admin/catalog/course.completed", params={"tenant": tenant})
        assert page.status_code == 200
        assert "JSON Schema · version 1" in page.text and "&#34;completedAt&#34;" in page.text
        assert "Example envelope" in page.text and "evt_01JEXAMPLE" in page.text
        assert course in page.text  # the recent event
        assert ui.get("/admin/catalog/no.such.type").status_code == 404
    finally:
        ui.close()


def test_a_tenant_type_is_created_then_versioned_from_the_form(
    server: ServerProcess, admin: Admin
) -> None:
    tenant = admin.tenant()
    name = f"acme.{unique('w')}.created"
    ui = AdminUI(server.url)
    try:
        form = {
            "tenant": tenant,
            "name": name,
            "description": "A widget was made.",
            "schema": json.dumps(SCHEMA),
        }
        made = ui.post("/admin/catalog/types", form)
        assert (
            made.status_code == 303
            and made.headers["location"] == f"/admin/catalog/{name}?tenant={tenant}"
        )
        stored = admin.http.get(f"/api/admin/catalog/{tenant}/types/{name}").json()
        assert stored["latestVersion"] == 1 and stored["description"] == {
            "en": "A widget was made."
        }
        listing = ui.get("/admin/catalog", params={"tenant": tenant, "q": name}).text
        assert name in listing and 'class="badge info"' in listing  # marked as a tenant type
        wider = {**SCHEMA, "properties": {**SCHEMA["properties"], "colour": {"type": "string"}}}
        again = ui.post("/admin/catalog/types", {**form, "schema": json.dumps(wider)})
        assert again.status_code == 303
        assert (
            admin.http.get(f"/api/admin/catalog/{tenant}/types/{name}").json()["latestVersion"] == 2
        )
        page = ui.get(f"/admin/catalog/{name}", params={"tenant": tenant}).text
        assert "version 2" in page and "Add a version" in page
    finally:
        ui.close()


def test_a_bad_schema_or_name_is_refused_on_the_page_and_nothing_changes(
    server: ServerProcess, admin: Admin
) -> None:
    tenant = admin.tenant()
    name = f"acme.{unique('w')}.created"
    ui = AdminUI(server.url)
    try:
        cases = [
            ({"schema": "{not json"}, "schema"),
            (
                {"schema": json.dumps({"type": "object", "properties": {"x": {"type": "nope"}}})},
                "/",
            ),
            ({"name": "course.completed"}, "/name"),  # shadows a shipped type
            ({"tenant": ""}, "tenant"),
        ]
        for change, field in cases:
            form = {"tenant": tenant, "name": name, "schema": json.dumps(SCHEMA), **change}
            answer = ui.post("/admin/catalog/types", form)
            assert answer.status_code == 422, change
            assert 'role="alert"' in answer.text and f"<strong>{field}" in answer.text, change
            assert form["name"] in answer.text  # the form keeps what was typed
        assert admin.http.get(f"/api/admin/catalog/{tenant}/types").json()["items"] == []
        assert ui.post("/admin/catalog/types", {"tenant": tenant}, headers={}).status_code == 422
        assert ui.post("/admin/catalog/types", {"csrf": "", "tenant": tenant}).status_code == 403
    finally:
        ui.close()


def test_a_tenant_bound_session_sees_and_writes_only_its_tenant(
    server: ServerProcess, admin: Admin
) -> None:
    mine, other = admin.tenant(), admin.tenant()
    admin.publish(completed(mine, "mine-course")).raise_for_status()
    admin.publish(completed(other, "other-course")).raise_for_status()
    ui = AdminUI(server.url, key=admin.api_key(["admin"], mine))
    try:
        page = ui.get("/admin/catalog/course.completed", params={"tenant": other}).text
        assert "mine-course" in page and "other-course" not in page
        name = f"acme.{unique('w')}.created"
        form = {"tenant": other, "name": name, "schema": json.dumps(SCHEMA)}
        assert ui.post("/admin/catalog/types", form).status_code == 303  # bound: its own tenant
        assert admin.http.get(f"/api/admin/catalog/{other}/types").json()["items"] == []
        assert admin.http.get(f"/api/admin/catalog/{mine}/types/{name}").status_code == 200
    finally:
        ui.close()
