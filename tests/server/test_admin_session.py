"""The Integration Manager's session over real HTTP: login, the cookie,
CSRF and origin checks, keys that end sessions, tenant-bound keys."""

from __future__ import annotations

import httpx
import pytest

from admin_http import AdminUI
from support import ADMIN_KEY, Admin, ServerProcess


def test_a_page_without_a_session_redirects_to_login(server: ServerProcess) -> None:
    answer = httpx.get(f"{server.url}/admin", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/admin/login?next=/admin"
    forged = httpx.get(
        f"{server.url}/admin", cookies={"tidings_admin": "not.a.jwt"}, follow_redirects=False
    )
    assert forged.status_code == 303


def test_a_good_key_sets_a_strict_expiring_cookie(server: ServerProcess) -> None:
    ui = AdminUI(server.url, log_in=False)
    try:
        answer = ui.log_in(ADMIN_KEY)
        assert answer.status_code == 303 and answer.headers["location"] == "/admin"
        cookie = answer.headers["set-cookie"].lower()
        for part in ("httponly", "samesite=strict", "path=/admin", "max-age="):
            assert part in cookie, part
        assert "secure" not in cookie  # plain HTTP here; Secure over HTTPS
        assert ui.get("/admin").status_code == 200
    finally:
        ui.close()


@pytest.mark.parametrize("key", ["wrong", "", "tdk_unknown"])
def test_a_bad_key_shows_the_form_again_and_sets_nothing(server: ServerProcess, key: str) -> None:
    answer = httpx.post(
        f"{server.url}/admin/login", data={"key": key}, headers={"Origin": server.url}
    )
    assert answer.status_code == 401
    assert "set-cookie" not in answer.headers
    assert 'name="key"' in answer.text and 'role="alert"' in answer.text


def test_only_admin_credentials_log_in(server: ServerProcess, admin: Admin) -> None:
    publish_only = admin.api_key(["publish"])
    ui = AdminUI(server.url, key=publish_only)
    try:
        assert ui.csrf == ""  # not logged in
        assert ui.get("/admin").status_code == 303
    finally:
        ui.close()


def test_a_post_without_the_csrf_token_or_from_elsewhere_is_refused(
    server: ServerProcess,
) -> None:
    ui = AdminUI(server.url)
    try:
        assert ui.post("/admin/logout", {"csrf": ""}).status_code == 403
        assert ui.post("/admin/logout", {"csrf": "0" * 32}).status_code == 403
        foreign = ui.post("/admin/logout", headers={"Origin": "http://evil.example"})
        assert foreign.status_code == 403
        assert ui.get("/admin").status_code == 200  # still logged in: nothing changed
        assert ui.post("/admin/logout").status_code == 303
    finally:
        ui.close()


def test_login_from_another_origin_is_refused(server: ServerProcess) -> None:
    answer = httpx.post(
        f"{server.url}/admin/login",
        data={"key": ADMIN_KEY},
        headers={"Origin": "http://evil.example"},
    )
    assert answer.status_code == 403 and "set-cookie" not in answer.headers


def test_revoking_the_key_ends_its_sessions(server: ServerProcess, admin: Admin) -> None:
    created = admin.http.post("/api/admin/api-keys", json={"scopes": ["admin"], "name": "ops"})
    created.raise_for_status()
    ui = AdminUI(server.url, key=created.json()["key"])
    try:
        assert ui.get("/admin").status_code == 200
        admin.http.delete(f"/api/admin/api-keys/{created.json()['id']}").raise_for_status()
        assert ui.get("/admin").status_code == 303  # back to the login form
    finally:
        ui.close()


def test_a_tenant_bound_key_logs_in_for_its_tenant(server: ServerProcess, admin: Admin) -> None:
    tenant = admin.tenant()
    ui = AdminUI(server.url, key=admin.api_key(["admin"], tenant_id=tenant))
    try:
        page = ui.get("/admin")
        assert page.status_code == 200 and f"tenant {tenant}" in page.text
    finally:
        ui.close()


def test_next_never_leaves_the_admin_ui(server: ServerProcess) -> None:
    for target in ("https://evil.example/", "//evil.example/admin", "/api/admin/tenants"):
        answer = httpx.post(
            f"{server.url}/admin/login",
            data={"key": ADMIN_KEY, "next": target},
            headers={"Origin": server.url},
        )
        assert answer.headers["location"] == "/admin", target
