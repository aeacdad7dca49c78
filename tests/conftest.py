from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from support import Admin, ServerProcess, running_server


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One real server for the session; tests isolate themselves by using
    fresh tenants (``admin.tenant()``)."""
    with running_server(tmp_path_factory.mktemp("server")) as srv:
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
