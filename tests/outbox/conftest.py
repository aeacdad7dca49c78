"""Fixtures of the outbox tests (see ``outbox_host``): a host database and
an embedded hub, each on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from outbox_host import Host, database, open_host, open_hub
from tidings.node import Tidings


@pytest.fixture(params=["sqlite", "postgres"])
def host_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=["sqlite", "postgres"])
def hub_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def host(
    host_kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Host]:
    instance = await open_host(database(host_kind, tmp_path, request, "host.db"))
    yield instance
    await instance.engine.dispose()


@pytest.fixture
async def hub(
    hub_kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Tidings]:
    node = await open_hub(database(hub_kind, tmp_path, request, "hub.db"))
    yield node
    await node.stop()
