from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pg import PostgresServer, pg_bin
from support import Admin, ServerProcess, need, running_server


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """One real server per backend for the session: every server test runs
    on SQLite and on PostgreSQL. Tests isolate themselves by using fresh
    tenants (``admin.tenant()``)."""
    database_url = None
    if request.param == "postgres":
        postgres: PostgresServer = request.getfixturevalue("postgres")
        database_url = postgres.url(postgres.create_database())
    with running_server(tmp_path_factory.mktemp("server"), database_url=database_url) as srv:
        yield srv


@pytest.fixture
def admin(server: ServerProcess) -> Iterator[Admin]:
    client = Admin(server.url)
    yield client
    client.close()


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[ServerProcess]:
    with running_server(tmp_path) as srv:
        yield srv


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL server for the session (skips locally without the
    binaries; CI's TIDINGS_REQUIRE_SERVICES=1 makes that a failure)."""
    need(pg_bin() is not None, "PostgreSQL (Debian package postgresql)")
    server = PostgresServer().start()
    yield server
    server.cleanup()


@pytest.fixture(scope="session")
def pg_template(postgres: PostgresServer) -> str:
    """A database migrated once, cloned per test."""
    import asyncio

    from tidings.store.migrate import upgrade

    name = postgres.create_database()
    asyncio.run(upgrade(postgres.url(name)))
    return name


@pytest.fixture
def pg_url(postgres: PostgresServer, pg_template: str) -> str:
    return postgres.url(postgres.create_database(template=pg_template))


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database on each backend, for tests that start their
    own servers."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'tidings.db'}"
    postgres: PostgresServer = request.getfixturevalue("postgres")
    return postgres.url(postgres.create_database())
