"""The throw-away PostgreSQL server the tests start (it lives in the
package, which ``tidings bench --database auto`` also uses)."""

from tidings.bench.pgcluster import PostgresServer, pg_bin

__all__ = ["PostgresServer", "pg_bin"]
