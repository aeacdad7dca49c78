"""Login, tokens and /api/me over a real portal server: the demo accounts
log in with ``password123``; a wrong password is a 401 problem; the token
is accepted by the portal API and by the hub on the same origin."""

from __future__ import annotations

import httpx
import jwt
import pytest

from portal_server import PortalServer

ACCOUNTS = {
    "tenant@example.com": ("TENANT", "org-1"),
    "landlord@example.com": ("LANDLORD", "org-1"),
    "contractor@example.com": ("CONTRACTOR", "org-1"),
    "ops@example.com": ("OPS", None),
    "landlord2@example.com": ("LANDLORD", "org-2"),
    "tenant2@example.com": ("TENANT", "org-2"),
}


@pytest.mark.parametrize("email", sorted(ACCOUNTS))
def test_each_demo_account_logs_in_and_is_its_token(portal: PortalServer, email: str) -> None:
    answer = httpx.post(
        f"{portal.url}/api/auth/login", json={"email": email, "password": "password123"}
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    role, organisation = ACCOUNTS[email]
    user = body["user"]
    assert (user["email"], user["role"], user["organisationId"]) == (email, role, organisation)
    claims = jwt.decode(body["accessToken"], portal.jwt_secret, algorithms=["HS256"])
    assert claims["sub"] == user["id"] and claims["role"] == role
    assert claims["tenant"] == (organisation or "ops")
    me = httpx.get(
        f"{portal.url}/api/me", headers={"Authorization": f"Bearer {body['accessToken']}"}
    )
    assert me.status_code == 200 and me.json() == user


def test_the_hub_accepts_the_portal_token(portal: PortalServer) -> None:
    token = portal.login("landlord@example.com")
    headers = {"Authorization": f"Bearer {token}"}
    ticket = httpx.post(f"{portal.url}/api/events/tickets", headers=headers)
    assert ticket.status_code == 201, ticket.text
    assert ticket.json()["ticket"]
    count = httpx.get(f"{portal.url}/api/notifications/unread-count", headers=headers)
    assert count.status_code == 200 and isinstance(count.json()["count"], int)


@pytest.mark.parametrize(
    "body",
    [
        {"email": "tenant@example.com", "password": "wrong"},
        {"email": "nobody@example.com", "password": "password123"},
    ],
)
def test_a_wrong_login_is_a_401_problem(portal: PortalServer, body: dict[str, str]) -> None:
    answer = httpx.post(f"{portal.url}/api/auth/login", json=body)
    assert answer.status_code == 401
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["status"] == 401 and "accessToken" not in answer.json()


def test_a_login_without_a_password_names_the_field(portal: PortalServer) -> None:
    answer = httpx.post(f"{portal.url}/api/auth/login", json={"email": "tenant@example.com"})
    assert answer.status_code == 422
    assert answer.json()["field"] == "/password"


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer not-a-jwt", "Basic dXNlcjpwYXNz"],
)
def test_me_needs_a_valid_token(portal: PortalServer, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    assert httpx.get(f"{portal.url}/api/me", headers=headers).status_code == 401


def test_a_token_signed_with_another_secret_is_refused(portal: PortalServer) -> None:
    forged = jwt.encode(
        {"sub": "usr-ops", "tenant": "ops", "exp": 4102444800},
        "another-secret-0123456789abcdef0123456789",
        "HS256",
    )
    answer = httpx.get(f"{portal.url}/api/me", headers={"Authorization": f"Bearer {forged}"})
    assert answer.status_code == 401


def test_passwords_are_stored_hashed(portal: PortalServer) -> None:
    import sqlite3

    path = portal.portal_database_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        hashes = [h for (h,) in db.execute("SELECT password_hash FROM portal_users")]
    assert len(hashes) >= 6
    assert all(h.startswith("$argon2id$") and "password123" not in h for h in hashes)
