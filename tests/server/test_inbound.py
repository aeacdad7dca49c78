"""Inbound webhooks signed by a real third-party signer (the
standardwebhooks library): a valid BILLING_SUSPEND suspends the tenant;
bad signatures, stale timestamps and replays are refused or ignored, and
every call leaves an audit row."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
from standardwebhooks import Webhook

from support import Admin, ServerProcess, unique

SECRET = "whsec_" + base64.b64encode(b"a-test-secret-of-32-bytes-length").decode()
MAPPINGS = {
    "BILLING_SUSPEND": {"transition": "SUSPENDED"},
    "BILLING_REACTIVATE": {"transition": "ACTIVE"},
    "EXTERNAL_DEPROVISION": {"transition": "DEPROVISIONING"},
    "CRM_NOTE": {
        "publish": {"type": "qms.document.updated", "audiences": ["permission:docs.read"]}
    },
}


def signed(
    payload: dict[str, Any],
    *,
    msg_id: str | None = None,
    at: datetime | None = None,
    secret: str = SECRET,
) -> tuple[bytes, dict[str, str]]:
    body = orjson.dumps(payload)
    msg_id = msg_id or unique("msg_")
    at = at or datetime.now(UTC)
    signature = Webhook(secret).sign(msg_id, at, body.decode())
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
    }
    return body, headers


def setup(admin: Admin) -> tuple[str, str]:
    name, tenant = unique("billing"), admin.tenant()
    response = admin.http.put(
        f"/api/admin/integrations/{name}", json={"secret": SECRET, "mappings": MAPPINGS}
    )
    assert response.status_code == 200, response.text
    admin.http.post(
        f"/api/admin/tenants/{tenant}/transition", json={"to": "ACTIVE"}
    ).raise_for_status()
    return name, tenant


def state(admin: Admin, tenant: str) -> str:
    return str(admin.http.get(f"/api/admin/tenants/{tenant}").json()["state"])


def audit(admin: Admin, name: str) -> list[dict[str, Any]]:
    return list(admin.http.get(f"/api/admin/integrations/{name}/log").json()["items"])


def test_a_signed_billing_suspend_suspends_and_a_replay_is_ignored(
    server: ServerProcess, admin: Admin
) -> None:
    name, tenant = setup(admin)
    body, headers = signed(
        {"type": "BILLING_SUSPEND", "tenantId": tenant, "reason": "card declined"}
    )
    first = httpx.post(f"{server.url}/api/inbound/{name}", content=body, headers=headers)
    assert first.status_code == 200 and first.json()["status"] == "accepted"
    assert state(admin, tenant) == "SUSPENDED"
    lifecycle = admin.http.get(f"/api/admin/tenants/{tenant}/lifecycle").json()["items"][-1]
    assert lifecycle["triggerSource"] == "integration" and lifecycle["triggeredBy"] == name
    assert lifecycle["reason"] == "card declined"
    replay = httpx.post(f"{server.url}/api/inbound/{name}", content=body, headers=headers)
    assert replay.status_code == 200 and replay.json()["status"] == "duplicate"
    body, headers = signed({"type": "BILLING_REACTIVATE", "tenantId": tenant})
    assert (
        httpx.post(f"{server.url}/api/inbound/{name}", content=body, headers=headers).status_code
        == 200
    )
    assert state(admin, tenant) == "ACTIVE"
    rows = audit(admin, name)
    assert [r["accepted"] for r in rows] == [True, False, True]  # newest first
    assert rows[1]["outcome"].startswith("duplicate")


def test_bad_signatures_and_stale_timestamps_are_refused_and_audited(
    server: ServerProcess, admin: Admin
) -> None:
    name, tenant = setup(admin)
    payload = {"type": "BILLING_SUSPEND", "tenantId": tenant}
    other = "whsec_" + base64.b64encode(b"another-secret-another-secret-xx").decode()
    for body, headers in (
        signed(payload, secret=other),
        signed(payload, at=datetime.now(UTC) - timedelta(minutes=30)),
    ):
        refused = httpx.post(f"{server.url}/api/inbound/{name}", content=body, headers=headers)
        assert (
            refused.status_code == 401
            and refused.headers["content-type"] == "application/problem+json"
        )
    body, headers = signed(payload)
    tampered = body.replace(b"BILLING_SUSPEND", b"BILLING_REACTIVATE")
    assert (
        httpx.post(
            f"{server.url}/api/inbound/{name}", content=tampered, headers=headers
        ).status_code
        == 401
    )
    assert state(admin, tenant) == "ACTIVE"
    rows = audit(admin, name)
    assert len(rows) == 3 and not any(r["accepted"] for r in rows)
    assert all(r["outcome"].startswith("refused") for r in rows)


def test_unmapped_events_and_publish_mappings(server: ServerProcess, admin: Admin) -> None:
    name, tenant = setup(admin)
    body, headers = signed({"type": "SOMETHING_ELSE", "tenantId": tenant})
    unmapped = httpx.post(f"{server.url}/api/inbound/{name}", content=body, headers=headers)
    assert unmapped.status_code == 422 and unmapped.json()["field"] == "/type"
    body, headers = signed({"type": "CRM_NOTE", "tenantId": tenant, "data": {"note": "hello"}})
    published = httpx.post(f"{server.url}/api/inbound/{name}", content=body, headers=headers)
    assert published.status_code == 200, published.text
    log = admin.http.get(
        "/api/events/log", params={"tenantId": tenant, "types": "qms.document.updated"}
    ).json()
    assert log["items"][0]["data"] == {"note": "hello"}
    assert (
        httpx.post(f"{server.url}/api/inbound/no-such", content=body, headers=headers).status_code
        == 404
    )


def test_hmac_scheme_and_bad_configuration(server: ServerProcess, admin: Admin) -> None:
    name, tenant = unique("crm"), admin.tenant()
    admin.http.post(
        f"/api/admin/tenants/{tenant}/transition", json={"to": "ACTIVE"}
    ).raise_for_status()
    config = {"secret": "plain-shared-secret", "scheme": "hmac-sha256", "mappings": MAPPINGS}
    assert admin.http.put(f"/api/admin/integrations/{name}", json=config).status_code == 200
    body = orjson.dumps({"type": "BILLING_SUSPEND", "tenantId": tenant})
    stamp = str(int(time.time()))
    digest = hmac.new(
        b"plain-shared-secret", stamp.encode() + b"." + body, hashlib.sha256
    ).hexdigest()
    headers = {"x-timestamp": stamp, "x-signature": f"sha256={digest}", "x-webhook-id": "h1"}
    assert (
        httpx.post(f"{server.url}/api/inbound/{name}", content=body, headers=headers).status_code
        == 200
    )
    assert state(admin, tenant) == "SUSPENDED"
    wrong = {**headers, "x-signature": "sha256=" + "0" * 64, "x-webhook-id": "h2"}
    assert (
        httpx.post(f"{server.url}/api/inbound/{name}", content=body, headers=wrong).status_code
        == 401
    )
    bad = admin.http.put(
        f"/api/admin/integrations/{name}",
        json={**config, "mappings": {"X": {"transition": "ON_FIRE"}}},
    )
    assert bad.status_code == 422 and bad.json()["field"] == "/mappings/X/transition"
