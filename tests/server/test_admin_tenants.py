"""The Integration Manager's tenants pages over real HTTP, on both backends:
the list with its counts, lifecycle moves through the form (only those the
state machine allows), users, roles and API keys through the forms, CSRF,
and a tenant-bound admin key that sees and changes only its own tenant.
Every change is checked through the JSON admin API, not the page."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from admin_http import AdminUI
from support import Admin, ServerProcess, unique


@pytest.fixture
def ui(server: ServerProcess) -> Iterator[AdminUI]:
    client = AdminUI(server.url)
    yield client
    client.close()


def state_of(admin: Admin, tenant_id: str) -> str:
    answer = admin.http.get(f"/api/admin/tenants/{tenant_id}")
    answer.raise_for_status()
    return str(answer.json()["state"])


def keys_of(admin: Admin, tenant_id: str) -> list[dict[str, object]]:
    answer = admin.http.get("/api/admin/api-keys", params={"tenantId": tenant_id})
    answer.raise_for_status()
    return list(answer.json()["items"])


def user_ids(admin: Admin, tenant_id: str) -> list[str]:
    answer = admin.http.get(f"/api/admin/tenants/{tenant_id}/users")
    answer.raise_for_status()
    return [u["userId"] for u in answer.json()["items"]]


def move_buttons(page: str) -> set[str]:
    """The target states the page offers (hidden ``to`` of each move form)."""
    return set(re.findall(r'<input type="hidden" name="to" value="([A-Z_]+)">', page))


def test_the_list_shows_tenants_with_state_counts_and_links(ui: AdminUI, admin: Admin) -> None:
    tenant = admin.tenant(name="Counted Co")
    admin.user(tenant, "u1")
    admin.user(tenant, "u2")
    admin.api_key(["publish"], tenant)
    for _ in range(3):
        assert admin.publish({"type": "qms.car.updated", "tenantId": tenant}).status_code == 202
    page = ui.get("/admin/tenants")
    assert page.status_code == 200
    row = re.search(rf'<tr>\s*<td><a href="/admin/tenants/{tenant}">.*?</tr>', page.text, re.S)
    assert row, "the tenant has a row linking to its page"
    cells = re.findall(r'<td class="num">([^<]+)</td>', row.group(0))
    assert cells == ["2", "1", "3"]  # users, live keys, events
    assert "Counted Co" in row.group(0) and 'class="badge info">CREATED' in row.group(0)


def test_creating_a_tenant_from_the_form(ui: AdminUI, admin: Admin) -> None:
    tenant = unique("new")
    answer = ui.post("/admin/tenants", {"id": tenant, "name": "Fresh Ltd"})
    assert answer.status_code == 303 and answer.headers["location"] == f"/admin/tenants/{tenant}"
    assert state_of(admin, tenant) == "CREATED"
    again = ui.post("/admin/tenants", {"id": tenant, "name": "Other name"})
    assert again.status_code == 422 and "Tenant id" in again.text and "exists" in again.text
    bad = ui.post("/admin/tenants", {"id": "no spaces!", "name": "x"})
    assert bad.status_code == 422 and "Tenant id" in bad.text
    listed = admin.http.get(f"/api/admin/tenants/{tenant}").json()
    assert listed["name"] == "Fresh Ltd"  # the refused post changed nothing


def test_a_transition_through_the_form_is_recorded(ui: AdminUI, admin: Admin) -> None:
    tenant = admin.tenant()
    page = ui.get(f"/admin/tenants/{tenant}").text
    assert move_buttons(page) == {"PROVISIONING", "ACTIVE"}  # what CREATED allows
    answer = ui.post(
        f"/admin/tenants/{tenant}/transition", {"to": "ACTIVE", "reason": "contract signed"}
    )
    assert answer.status_code == 303
    assert state_of(admin, tenant) == "ACTIVE"
    row = admin.http.get(f"/api/admin/tenants/{tenant}/lifecycle").json()["items"][-1]
    assert (row["from"], row["to"], row["reason"]) == ("CREATED", "ACTIVE", "contract signed")
    page = ui.get(f"/admin/tenants/{tenant}").text
    assert move_buttons(page) == {"SUSPENDED", "READ_ONLY", "DEPROVISIONING"}
    assert "contract signed" in page  # the lifecycle log
    fragment = ui.post(
        f"/admin/tenants/{tenant}/transition", {"to": "SUSPENDED", "reason": "unpaid"}, htmx=True
    )
    assert fragment.status_code == 200 and fragment.text.lstrip().startswith("<section")
    assert "Moved from ACTIVE to SUSPENDED" in fragment.text
    assert state_of(admin, tenant) == "SUSPENDED"


def test_a_transition_the_machine_does_not_allow_is_not_offered_and_refused(
    ui: AdminUI, admin: Admin
) -> None:
    tenant = admin.tenant()
    log = admin.http.get(f"/api/admin/tenants/{tenant}/lifecycle").json()["items"]
    assert "ARCHIVED" not in move_buttons(ui.get(f"/admin/tenants/{tenant}").text)
    answer = ui.post(f"/admin/tenants/{tenant}/transition", {"to": "ARCHIVED", "reason": "x"})
    assert answer.status_code == 409
    assert "cannot move from CREATED to ARCHIVED" in answer.text
    fragment = ui.post(f"/admin/tenants/{tenant}/transition", {"to": "NOPE"}, htmx=True)
    assert 'role="alert"' in fragment.text and "unknown tenant state" in fragment.text
    assert state_of(admin, tenant) == "CREATED"
    assert admin.http.get(f"/api/admin/tenants/{tenant}/lifecycle").json()["items"] == log


def test_users_created_updated_and_deleted_through_the_forms(ui: AdminUI, admin: Admin) -> None:
    tenant = admin.tenant()
    form = {"user_id": "alice", "system_role": "member", "grants": "orders.read, a.b"}
    assert ui.post(f"/admin/tenants/{tenant}/users", form).status_code == 303
    user = admin.http.get(f"/api/admin/tenants/{tenant}/users/alice").json()
    assert user["systemRole"] == "member"
    assert user["permissionOverrides"]["grant"] == ["a.b", "orders.read"]
    update = {"user_id": "alice", "system_role": "manager", "grants": "", "revokes": "x.y"}
    fragment = ui.post(f"/admin/tenants/{tenant}/users", update, htmx=True)
    assert "Updated user alice" in fragment.text
    user = admin.http.get(f"/api/admin/tenants/{tenant}/users/alice").json()
    assert user["systemRole"] == "manager" and user["permissionOverrides"]["revoke"] == ["x.y"]
    bad = ui.post(f"/admin/tenants/{tenant}/users", {"user_id": "bob", "system_role": "no role!"})
    assert bad.status_code == 422 and "System role" in bad.text
    assert user_ids(admin, tenant) == ["alice"]  # nothing changed
    deleted = ui.post(f"/admin/tenants/{tenant}/users/alice/delete", htmx=True)
    assert "Deleted user alice" in deleted.text
    assert user_ids(admin, tenant) == []


def test_role_defaults_listed_and_edited(ui: AdminUI, admin: Admin) -> None:
    tenant = admin.tenant()
    role = unique("role")
    form = {"role": role, "permissions": "orders.read\norders.write"}
    assert ui.post(f"/admin/tenants/{tenant}/roles", form).status_code == 303
    page = ui.get(f"/admin/tenants/{tenant}").text
    assert role in page and "orders.write" in page
    bad = ui.post(f"/admin/tenants/{tenant}/roles", {"role": role, "permissions": "bad perm!"})
    assert bad.status_code == 422 and "permissions" in bad.text.lower()


def test_api_keys_created_once_and_revoked_through_the_forms(ui: AdminUI, admin: Admin) -> None:
    tenant = admin.tenant()
    form = {"name": "orders-service", "scopes": ["publish"], "expires_in_days": "30"}
    answer = ui.post(f"/admin/tenants/{tenant}/keys", form)
    assert answer.status_code == 200
    secret = re.search(r'id="new-key-secret" value="([^"]+)"', answer.text)
    assert secret, "the new key is shown"
    (key,) = keys_of(admin, tenant)
    assert key["name"] == "orders-service" and key["scopes"] == ["publish"] and key["expiresAt"]
    published = httpx.post(
        f"{ui.url}/api/events",
        json={"type": "qms.car.updated"},
        headers={"Authorization": f"Bearer {secret.group(1)}"},
    )
    assert published.status_code == 202  # the key works
    assert secret.group(1) not in ui.get(f"/admin/tenants/{tenant}").text  # shown once
    none = ui.post(f"/admin/tenants/{tenant}/keys", {"name": "x"}, htmx=True)
    assert "Scopes" in none.text and 'role="alert"' in none.text
    assert len(keys_of(admin, tenant)) == 1
    revoked = ui.post(f"/admin/tenants/{tenant}/keys/{key['id']}/revoke", htmx=True)
    assert revoked.status_code == 200 and f"Revoked {key['id']}" in revoked.text
    assert keys_of(admin, tenant)[0]["revokedAt"] is not None


def test_a_post_without_the_csrf_token_changes_nothing(ui: AdminUI, admin: Admin) -> None:
    tenant = admin.tenant()
    for path, data in [
        (f"/admin/tenants/{tenant}/transition", {"to": "ACTIVE"}),
        (f"/admin/tenants/{tenant}/users", {"user_id": "eve", "system_role": "member"}),
        (f"/admin/tenants/{tenant}/keys", {"name": "k", "scopes": "publish"}),
        ("/admin/tenants", {"id": unique("csrf"), "name": "x"}),
    ]:
        refused = ui.post(path, {**data, "csrf": ""})
        assert refused.status_code == 403, path
    assert state_of(admin, tenant) == "CREATED"
    assert user_ids(admin, tenant) == [] and keys_of(admin, tenant) == []


def test_a_tenant_bound_admin_key_sees_and_changes_only_its_tenant(
    server: ServerProcess, admin: Admin
) -> None:
    mine, other = admin.tenant(name="Mine Inc"), admin.tenant(name="Other Inc")
    admin.user(other, "victim")
    admin.api_key(["publish"], other)
    other_key = keys_of(admin, other)[0]["id"]
    ui = AdminUI(server.url, key=admin.api_key(["admin"], mine))
    try:
        listing = ui.get("/admin/tenants").text
        assert f"/admin/tenants/{mine}" in listing and f"/admin/tenants/{other}" not in listing
        assert 'action="/admin/tenants"' not in listing  # no create form
        page = ui.get(f"/admin/tenants/{mine}")
        assert page.status_code == 200 and move_buttons(page.text) == set()
        assert ui.get(f"/admin/tenants/{other}").status_code == 403
        # its own tenant: users and keys yes, lifecycle moves no (platform only)
        assert (
            ui.post(
                f"/admin/tenants/{mine}/users", {"user_id": "u", "system_role": "m"}
            ).status_code
            == 303
        )
        assert ui.post(f"/admin/tenants/{mine}/transition", {"to": "ACTIVE"}).status_code == 403
        attempts = [
            ("/admin/tenants", {"id": unique("sneaky"), "name": "x"}),
            (f"/admin/tenants/{other}/transition", {"to": "ACTIVE"}),
            (f"/admin/tenants/{other}/users", {"user_id": "u", "system_role": "m"}),
            (f"/admin/tenants/{other}/users/victim/delete", {}),
            (f"/admin/tenants/{other}/roles", {"role": "member", "permissions": "x.y"}),
            (f"/admin/tenants/{other}/keys", {"name": "k", "scopes": "admin"}),
            (f"/admin/tenants/{other}/keys/{other_key}/revoke", {}),
        ]
        for path, data in attempts:
            assert ui.post(path, data).status_code == 403, path
        # another tenant's key named under its own tenant: not revealed
        assert ui.post(f"/admin/tenants/{mine}/keys/{other_key}/revoke").status_code == 404
    finally:
        ui.close()
    assert state_of(admin, mine) == "CREATED" and state_of(admin, other) == "CREATED"
    assert user_ids(admin, other) == ["victim"]
    assert [k["revokedAt"] for k in keys_of(admin, other)] == [None]
