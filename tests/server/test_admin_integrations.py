"""``/admin/integrations`` over real HTTP on both backends: the list, a new
integration whose secret (shown once) signs real calls, the audit log of
received calls (accepted, signature failed, duplicate, mapped action),
rotating the secret, bad input named and nothing stored, CSRF-less posts
refused, and integrations out of a tenant-bound key's reach."""

from __future__ import annotations

import hashlib
import hmac
import html
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import orjson
import pytest
from standardwebhooks import Webhook

from admin_http import AdminUI
from support import Admin, ServerProcess, unique

MAPPINGS = {"BILLING_SUSPEND": {"transition": "SUSPENDED"}}
SECRET_BOX = re.compile(r'id="new-secret"[^>]*value="([^"]+)"')


@pytest.fixture
def ui(server: ServerProcess) -> Iterator[AdminUI]:
    client = AdminUI(server.url)
    yield client
    client.close()


def call(url: str, name: str, secret: str, tenant: str, msg_id: str | None = None) -> int:
    """A Standard Webhooks call signed with ``secret``; its status."""
    body = orjson.dumps({"type": "BILLING_SUSPEND", "tenantId": tenant}).decode()
    msg_id = msg_id or unique("msg_")
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(datetime.now(UTC).timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, datetime.now(UTC), body),
        "content-type": "application/json",
    }
    return httpx.post(f"{url}/api/inbound/{name}", content=body, headers=headers).status_code


def create(ui: AdminUI, name: str, *, htmx: bool = False) -> str:
    form = {
        "name": name,
        "scheme": "standard-webhooks",
        "mappings": orjson.dumps(MAPPINGS).decode(),
    }
    answer = ui.post("/admin/integrations", form, htmx=htmx)
    assert answer.status_code == 200, answer.text
    found = SECRET_BOX.search(answer.text)
    assert found, answer.text
    return html.unescape(found.group(1))


def active_tenant(admin: Admin) -> str:
    tenant = admin.tenant()
    moved = admin.http.post(f"/api/admin/tenants/{tenant}/transition", json={"to": "ACTIVE"})
    moved.raise_for_status()
    return tenant


def test_a_created_integration_signs_calls_and_logs_them(
    server: ServerProcess, admin: Admin, ui: AdminUI
) -> None:
    name, tenant = unique("billing"), active_tenant(admin)
    secret = create(ui, name)
    assert secret.startswith("whsec_")
    listed = ui.get("/admin/integrations").text
    assert f'href="/admin/integrations/{name}"' in listed and "BILLING_SUSPEND" in listed
    assert secret not in listed  # shown once, never again
    msg_id = unique("msg_")
    assert call(server.url, name, secret, tenant, msg_id) == 200
    assert call(server.url, name, secret, tenant, msg_id) == 200  # a duplicate
    assert call(server.url, name, "whsec_" + "A" * 32, tenant) == 401
    page = ui.get(f"/admin/integrations/{name}")
    assert page.status_code == 200 and secret not in page.text
    rows = re.findall(r"<tr>\s*<td><time.*?</tr>", page.text, re.S)
    assert len(rows) == 3
    failed, duplicate, accepted = rows  # newest first
    assert ">failed<" in failed and ">refused<" in failed
    assert ">ok<" in duplicate and ">duplicate<" in duplicate
    assert ">accepted<" in accepted and f"tenant {tenant} ACTIVE -&gt; SUSPENDED" in accepted
    assert "move the tenant to SUSPENDED" in page.text


def test_an_hmac_integration_gets_a_hex_secret_that_signs(
    server: ServerProcess, admin: Admin, ui: AdminUI
) -> None:
    name, tenant = unique("ledger"), active_tenant(admin)
    form = {"name": name, "scheme": "hmac-sha256", "mappings": orjson.dumps(MAPPINGS).decode()}
    answer = ui.post("/admin/integrations", form, htmx=True)
    found = SECRET_BOX.search(answer.text)
    assert answer.status_code == 200 and found and "created" in answer.text
    secret = found.group(1)
    assert re.fullmatch("[0-9a-f]{48}", secret)
    body = orjson.dumps({"type": "BILLING_SUSPEND", "tenantId": tenant})
    stamp = str(int(time.time()))
    mac = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    headers = {"X-Timestamp": stamp, "X-Signature": f"sha256={mac}"}
    sent = httpx.post(f"{server.url}/api/inbound/{name}", content=body, headers=headers)
    assert sent.status_code == 200, sent.text
    assert "hmac-sha256" in ui.get(f"/admin/integrations/{name}").text


def test_rotating_the_secret_retires_the_old_one(
    server: ServerProcess, admin: Admin, ui: AdminUI
) -> None:
    name, tenant = unique("crm"), active_tenant(admin)
    old = create(ui, name, htmx=True)
    rotated = ui.post(f"/admin/integrations/{name}/rotate", htmx=True)
    assert rotated.status_code == 200 and "not shown again" in rotated.text
    found = SECRET_BOX.search(rotated.text)
    assert found
    new = html.unescape(found.group(1))
    assert new != old
    assert call(server.url, name, old, tenant) == 401
    assert call(server.url, name, new, tenant) == 200


def test_bad_input_names_the_field_and_stores_nothing(admin: Admin, ui: AdminUI) -> None:
    taken = unique("taken")
    create(ui, taken)
    name = unique("bad")
    for form, field in (
        ({"name": "no spaces allowed"}, "Name:"),
        ({"name": name, "mappings": "{not json"}, "Mappings:"),
        ({"name": name, "mappings": '{"X": {"transition": "NOWHERE"}}'}, "Mappings:"),
        ({"name": name, "scheme": "md5"}, "Scheme:"),
        ({"name": taken}, "Name:"),
    ):
        answer = ui.post("/admin/integrations", {"scheme": "standard-webhooks", **form})
        assert answer.status_code == 422 and 'role="alert"' in answer.text, form
        assert field in answer.text, form
    assert admin.http.get(f"/api/admin/integrations/{name}/log").json()["items"] == []
    assert ui.get(f"/admin/integrations/{name}").status_code == 404


def test_posts_without_the_csrf_token_change_nothing(
    server: ServerProcess, admin: Admin, ui: AdminUI
) -> None:
    name, tenant = unique("erp"), active_tenant(admin)
    secret = create(ui, name)
    assert ui.post(f"/admin/integrations/{name}/rotate", {"csrf": ""}).status_code == 403
    other = unique("erp")
    assert ui.post("/admin/integrations", {"csrf": "0" * 32, "name": other}).status_code == 403
    assert call(server.url, name, secret, tenant) == 200  # the secret still works
    assert ui.get(f"/admin/integrations/{other}").status_code == 404


def test_a_tenant_bound_key_reaches_no_integration(
    server: ServerProcess, admin: Admin, ui: AdminUI
) -> None:
    name, tenant = unique("hr"), active_tenant(admin)
    secret = create(ui, name)
    bound = AdminUI(server.url, key=admin.api_key(["admin"], tenant_id=tenant))
    try:
        page = bound.get("/admin/integrations")
        assert page.status_code == 403 and "platform-wide" in page.text
        assert name not in page.text
        assert bound.get(f"/admin/integrations/{name}").status_code == 403
        assert bound.post(f"/admin/integrations/{name}/rotate").status_code == 403
        assert bound.post("/admin/integrations", {"name": unique("x")}).status_code == 403
    finally:
        bound.close()
    assert call(server.url, name, secret, tenant) == 200  # not rotated
