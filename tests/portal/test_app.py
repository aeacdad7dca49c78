"""The portal and the hub on one origin (the hub mounted at the root after
the portal's routes), and the portal's settings."""

from __future__ import annotations

import httpx
import pytest

from portal_server import PortalServer
from tidings.portal.settings import from_env


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/readyz", 200),  # the hub's
        ("/docs", 200),  # the hub's API reference
        ("/static/tidings.js", 200),  # the hub's browser client
        ("/api/me", 401),  # the portal's
        ("/api/notifications/unread-count", 401),  # the hub's, needs a token
        ("/login", 200),  # a portal page
    ],
)
def test_one_origin_serves_the_portal_and_the_hub(
    portal: PortalServer, path: str, status: int
) -> None:
    assert httpx.get(f"{portal.url}{path}", timeout=30).status_code == status


def test_the_integration_manager_is_on_the_same_origin(portal: PortalServer) -> None:
    login = httpx.get(f"{portal.url}/admin/login", timeout=30)
    assert login.status_code == 200 and 'name="key"' in login.text
    signed_in = httpx.post(f"{portal.url}/admin/login", data={"key": portal.admin_key}, timeout=30)
    assert signed_in.status_code == 303, signed_in.text


def test_settings_default_the_portal_database_beside_the_hubs() -> None:
    settings = from_env({"TIDINGS_DATABASE_URL": "sqlite:////var/lib/t/hub.db"})
    assert settings.database_url == "sqlite:////var/lib/t/tidings-portal.db"
    assert settings.payment_secret.startswith("whsec_") and settings.payment_secret_generated
    assert settings.jwt_secret and settings.admin_key  # generated for the process
    again = from_env({"TIDINGS_DATABASE_URL": "sqlite:////var/lib/t/hub.db"})
    assert again.payment_secret != settings.payment_secret


def test_settings_from_the_environment() -> None:
    env = {
        "TIDINGS_DATABASE_URL": "postgresql://u@127.0.0.1/hub",
        "TIDINGS_PORTAL_DATABASE_URL": "postgresql://u@127.0.0.1/portal",
        "TIDINGS_DEMO_PAYMENT_SECRET": "whsec_c2VjcmV0c2VjcmV0c2VjcmV0",
        "TIDINGS_JWT_SECRET": "j" * 40,
        "TIDINGS_ADMIN_KEY": "a" * 40,
    }
    settings = from_env(env)
    assert settings.database_url == "postgresql://u@127.0.0.1/portal"
    assert settings.payment_secret == env["TIDINGS_DEMO_PAYMENT_SECRET"]
    assert not settings.payment_secret_generated
    assert (settings.jwt_secret, settings.admin_key) == ("j" * 40, "a" * 40)
