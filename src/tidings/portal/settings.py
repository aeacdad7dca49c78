"""The portal's settings: the hub's own (``TIDINGS_*``) plus the portal's.

``TIDINGS_PORTAL_DATABASE_URL`` holds the portal's tables (default: a
SQLite file next to the hub's SQLite file, else ``./tidings-portal.db``);
``TIDINGS_DEMO_PAYMENT_SECRET`` verifies the payment webhook (a
``whsec_...`` Standard Webhooks secret; generated, and printed by the demo,
when unset). The hub needs a JWT secret and an admin key: the portal signs
its users' tokens with the first and syncs its users with the second, so
both are generated for the process when unset.
"""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tidings.config import Settings, load_settings

PORTAL_DATABASE_ENV = "TIDINGS_PORTAL_DATABASE_URL"
PAYMENT_SECRET_ENV = "TIDINGS_DEMO_PAYMENT_SECRET"


@dataclass(frozen=True)
class PortalSettings:
    hub: Settings
    database_url: str
    payment_secret: str
    payment_secret_generated: bool = False
    token_ttl_s: float = 8 * 3600.0

    @property
    def jwt_secret(self) -> str:
        assert self.hub.jwt_secret is not None  # from_env always sets one
        return self.hub.jwt_secret

    @property
    def admin_key(self) -> str:
        assert self.hub.admin_key is not None  # from_env always sets one
        return self.hub.admin_key


def new_payment_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` + base64 of 24 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def portal_database_default(hub_url: str) -> str:
    """A SQLite file beside the hub's SQLite file (or in the working directory)."""
    if hub_url.startswith("sqlite:///"):
        hub_file = Path(hub_url[len("sqlite:///") :])
        return f"sqlite:///{hub_file.with_name('tidings-portal.db')}"
    return "sqlite:///./tidings-portal.db"


def from_env(env: Mapping[str, str] | None = None, **hub_overrides: Any) -> PortalSettings:
    """Settings from the environment; the hub's secrets generated when unset."""
    env = os.environ if env is None else env
    hub = load_settings(env=env, **hub_overrides)
    generated = {
        name: secrets.token_urlsafe(32)
        for name in ("jwt_secret", "admin_key")
        if getattr(hub, name) is None
    }
    if generated:
        hub = hub.model_copy(update=generated)
    payment_secret = env.get(PAYMENT_SECRET_ENV) or ""
    return PortalSettings(
        hub=hub,
        database_url=env.get(PORTAL_DATABASE_ENV) or portal_database_default(hub.database_url),
        payment_secret=payment_secret or new_payment_secret(),
        payment_secret_generated=not payment_secret,
    )
