"""PostgreSQL for ``tidings bench --database URL|auto``.

Every run that uses PostgreSQL gets a fresh ``bench_<random>`` database on
the given server (``CREATE DATABASE``), dropped when the run is over; the
database named in the URL is only used to issue those statements and is
never written to.

``--database auto`` starts a throw-away server with the tests' helper
(``tests/pg.py``) and removes it at the end. That helper turns ``fsync`` and
``full_page_writes`` off to make tests fast; the benchmark measures durable
publishing, so :func:`temporary_server` starts it with PostgreSQL's
defaults (``fsync``, ``full_page_writes`` and ``synchronous_commit`` on).
The settings the server really runs with are recorded in the JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from tidings.bench.servers import unpinned

SCHEMES = ("postgresql", "postgres", "postgresql+asyncpg")
REPORTED_SETTINGS = (
    "server_version",
    "fsync",
    "synchronous_commit",
    "full_page_writes",
    "wal_level",
    "shared_buffers",
    "max_connections",
)
CONNECT_TIMEOUT_S = 5.0
AUTO = "auto"


class DatabaseError(Exception):
    """The PostgreSQL server cannot be used (one-line message)."""


def is_postgres_url(url: str) -> bool:
    return url.split("://", 1)[0] in SCHEMES and "://" in url


def asyncpg_dsn(url: str) -> str:
    return "postgresql://" + url.split("://", 1)[1]


def with_database(url: str, database: str) -> str:
    """``url`` naming another database (same scheme, credentials, host)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


def redacted(url: str) -> str:
    """``host:port/database``: for output, never the password."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or 5432}{parts.path}"


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


async def _execute(url: str, *statements: str) -> list[Any]:
    """Run ``statements`` on one connection; the last one's rows."""
    conn = await asyncpg.connect(asyncpg_dsn(url), timeout=CONNECT_TIMEOUT_S)
    try:
        rows: list[Any] = []
        for statement in statements:
            rows = await conn.fetch(statement)
        return rows
    finally:
        await conn.close(timeout=CONNECT_TIMEOUT_S)


def execute(url: str, *statements: str) -> list[Any]:
    return asyncio.run(_execute(url, *statements))


@dataclass
class Postgres:
    """A reachable server: ``admin_url`` names the database the
    ``CREATE/DROP DATABASE`` statements run in."""

    admin_url: str
    origin: str  # how it came to be: a temporary server, or the one given
    postmaster_pid: int | None = None  # known for the temporary server (CPU accounting)

    def settings(self) -> dict[str, str]:
        query = ", ".join(f"current_setting('{name}') AS {name}" for name in REPORTED_SETTINGS)
        return dict(execute(self.admin_url, f"SELECT {query}")[0])

    def describe(self) -> dict[str, Any]:
        described: dict[str, Any] = {
            "server": redacted(self.admin_url),
            "origin": self.origin,
            "settings": self.settings(),
        }
        if self.postmaster_pid is not None:  # the temporary server, started on every core
            described["pinned"] = False
        return described

    @contextlib.contextmanager
    def fresh_database(self) -> Iterator[str]:
        """A new empty database for one run; its URL. Dropped afterwards."""
        name = f"bench_{uuid.uuid4().hex[:12]}"
        try:
            execute(self.admin_url, f'CREATE DATABASE "{name}"')
        except Exception as exc:
            raise DatabaseError(f"cannot create database {name}: {first_line(exc)}") from None
        try:
            yield with_database(self.admin_url, name)
        finally:
            drop_database(self.admin_url, name)


def drop_database(admin_url: str, name: str) -> None:
    """Drop a benchmark database; a failure is a warning, not an error."""
    try:
        try:
            execute(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        except asyncpg.PostgresSyntaxError:  # before PostgreSQL 13
            execute(admin_url, f'DROP DATABASE IF EXISTS "{name}"')
    except Exception as exc:
        sys.stderr.write(f"tidings bench: could not drop database {name}: {first_line(exc)}\n")


def check_reachable(url: str) -> None:
    try:
        execute(url, "SELECT 1")
    except Exception as exc:
        where = redacted(url)
        raise DatabaseError(f"cannot reach PostgreSQL at {where}: {first_line(exc)}") from None


def check_url(url: str) -> None:
    """A ``postgresql://`` URL of a server that answers."""
    if not is_postgres_url(url):
        raise DatabaseError("--database takes a postgresql:// URL or 'auto'")
    check_reachable(url)


def _durable_server() -> Any:
    """:class:`~tidings.bench.pgcluster.PostgresServer`, started with durable settings."""
    from tidings.bench.pgcluster import PostgresServer

    class DurablePostgres(PostgresServer):
        def _pg_ctl_start(self) -> None:
            options = (
                f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1 "
                "-c max_connections=300"
            )
            log = str(self.socket_dir / "postgres.log")
            pg_ctl = str(self.bin / "pg_ctl")
            self._run(pg_ctl, "-D", str(self.data), "-l", log, "-o", options, "-w", "start")

    return DurablePostgres()


def postmaster_pid(data_dir: Path) -> int | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        return int((data_dir / "postmaster.pid").read_text().splitlines()[0])
    return None


@contextlib.contextmanager
def temporary_server() -> Iterator[Postgres]:
    server = _durable_server()
    try:
        try:
            with unpinned():  # PostgreSQL is not pinned: its backends use either core
                server.start()
        except Exception as exc:
            raise DatabaseError(f"cannot start a temporary PostgreSQL: {first_line(exc)}") from None
        url = server.url("postgres")
        check_reachable(url)
        origin = "temporary (tests/pg.py, durable settings)"
        yield Postgres(url, origin, postmaster_pid(server.data))
    finally:
        server.cleanup()


@contextlib.contextmanager
def connect(database: str) -> Iterator[Postgres]:
    """``database`` is ``auto`` or a ``postgresql://`` URL."""
    if database == AUTO:
        with temporary_server() as server:
            yield server
        return
    check_url(database)
    yield Postgres(database, "given")
