"""Fixtures of the portal tests: the portal as a real server.

``portal`` is one seeded server per session on SQLite (hub and portal
databases); ``portal_pg`` the same on PostgreSQL (both databases);
``any_portal`` runs a test on each. Tests that change shared state make
their own tickets and invoices, so they never depend on each other."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pg import PostgresServer
from portal_server import PortalServer, running_portal


@pytest.fixture(scope="session")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PortalServer]:
    tmp = tmp_path_factory.mktemp("portal")
    with running_portal(
        tmp, f"sqlite:///{tmp / 'hub.db'}", f"sqlite:///{tmp / 'portal.db'}"
    ) as server:
        yield server


@pytest.fixture(scope="session")
def portal_pg(
    tmp_path_factory: pytest.TempPathFactory, postgres: PostgresServer
) -> Iterator[PortalServer]:
    tmp = tmp_path_factory.mktemp("portal-pg")
    hub_url = postgres.url(postgres.create_database())
    portal_url = postgres.url(postgres.create_database())
    with running_portal(tmp, hub_url, portal_url) as server:
        yield server


@pytest.fixture(params=["sqlite", "postgres"])
def any_portal(request: pytest.FixtureRequest) -> PortalServer:
    """The test runs on the SQLite portal and on the PostgreSQL one."""
    name = "portal" if request.param == "sqlite" else "portal_pg"
    server: PortalServer = request.getfixturevalue(name)
    return server
