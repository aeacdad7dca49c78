"""The outbox table a host application adds to its own database.

One row per event the host committed and Tidings has not taken yet. The
relay reads ``pending`` rows in ``seq`` order, publishes them and deletes
them; a row the hub refuses stays, ``refused``, with its error.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    text,
)

DEFAULT_TABLE_NAME = "tidings_outbox"
PENDING = "pending"  # committed, waiting for the relay
REFUSED = "refused"  # the hub refused it: kept with its error until retried


def outbox_table(
    metadata: MetaData, name: str = DEFAULT_TABLE_NAME, *, schema: str | None = None
) -> Table:
    """Define the outbox table on the host's ``metadata`` (SQLite and
    PostgreSQL). Create it with the host's ``metadata.create_all`` or an
    Alembic migration (``alembic revision --autogenerate`` sees it).

    ``seq`` orders the rows (SQLite's rowid, a PostgreSQL ``BIGSERIAL``);
    ``body`` is the envelope as JSON text, its ``id`` always set."""
    return Table(
        name,
        metadata,
        Column(
            "seq",
            BigInteger().with_variant(Integer, "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        Column("event_id", String(128), nullable=False),
        Column("tenant_id", String(64), nullable=False),
        Column("event_type", String(128), nullable=False),
        Column("body", Text, nullable=False),
        Column("created_at", Float, nullable=False),
        Column("state", String(16), nullable=False, server_default=text(f"'{PENDING}'")),
        Column("attempts", Integer, nullable=False, server_default=text("0")),
        Column("error", Text, nullable=True),
        Column("refused_at", Float, nullable=True),
        Index(f"ix_{name}_state_seq", "state", "seq"),
        schema=schema,
    )


def lock_key(name: str, purpose: str = "") -> int:
    """A stable signed 64-bit PostgreSQL advisory-lock key for the outbox
    table ``name``: its relay's (no ``purpose``), or its writers'."""
    label = f"tidings-outbox:{name}" + (f":{purpose}" if purpose else "")
    digest = hashlib.blake2b(label.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)
