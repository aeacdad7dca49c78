from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from pg import PostgresServer, pg_bin, server_database
from receivers import MailSink, WebhookReceiver
from support import Admin, ServerProcess, need, running_server
from tidings.store.migrate import upgrade
from tidings.store.sql import SQLStore


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """One real server per backend for the session: every server test runs
    on SQLite and on PostgreSQL. Tests isolate themselves by using fresh
    tenants (``admin.tenant()``)."""
    database_url = server_database(request)
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


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[SQLStore]:
    """A migrated store on each backend (the store contract tests)."""
    await upgrade(database_url)
    instance = SQLStore(database_url)
    await instance.open()
    yield instance
    await instance.close()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database on each backend, for tests that start their
    own servers."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'tidings.db'}"
    postgres: PostgresServer = request.getfixturevalue("postgres")
    return postgres.url(postgres.create_database())


@pytest.fixture(scope="session")
def receiver() -> Iterator[WebhookReceiver]:
    hooks = WebhookReceiver()
    yield hooks
    hooks.close()


@pytest.fixture(scope="session")
def mail() -> Iterator[MailSink]:
    sink = MailSink()
    yield sink
    sink.close()


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def automation_server(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    mail: MailSink,
) -> Iterator[ServerProcess]:
    """A server that may call loopback webhooks, sends mail to the test's
    SMTP server and loads the test plugin (host actions)."""
    tmp = tmp_path_factory.mktemp("automation")
    database_url = server_database(request)
    env = {
        "TIDINGS_ALLOW_PRIVATE_WEBHOOKS": "1",
        "TIDINGS_SMTP_URL": mail.url,
        "TIDINGS_PLUGINS": "automation_plugin",
        "PYTHONPATH": str(Path(__file__).parent),
        "TEST_PLUGIN_LOG": str(tmp / "plugin.jsonl"),
        "TIDINGS_JOB_POLL_S": "0.2",
    }
    with running_server(tmp, env=env, database_url=database_url) as srv:
        yield srv
