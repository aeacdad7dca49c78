"""The throw-away PostgreSQL server the tests start (it lives in the
package, which ``tidings bench --database auto`` also uses)."""

import pytest

from tidings.bench.pgcluster import PostgresServer, pg_bin

__all__ = ["PostgresServer", "pg_bin", "server_database"]


def server_database(request: pytest.FixtureRequest) -> str | None:
    """The database of a server fixture parametrized ``sqlite``/``postgres``:
    ``None`` (the server's own SQLite file) or a fresh PostgreSQL database
    on the session's server."""
    if request.param != "postgres":
        return None
    postgres: PostgresServer = request.getfixturevalue("postgres")
    return postgres.url(postgres.create_database())
