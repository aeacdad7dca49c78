"""SQLite's entity index, built from the log in bulk.

An index keyed by entity takes one leaf page per distinct entity a commit
touches: a batch of 500 events about 500 entities rewrote ~500 pages per
commit, most of what a batch append cost (~15 of ~25 µs per event,
measured). So on SQLite the appender leaves the entity out of the append
and, every :data:`EVERY_ROWS` events or :data:`EVERY_S` seconds, copies the
new rows into ``entity_index`` sorted by key, touching each page once for
many rows. ``log_marks`` records how far that is done, in the same
transaction; history queries read the index below the mark and the log
itself above it (:func:`entity_filter`), so answers are always complete.
PostgreSQL indexes the events table directly.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Table, bindparam, delete, select, union_all
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import UnaryExpression
from sqlalchemy.sql.operators import custom_op

from tidings.store.schema import entity_index, events, log_marks

MARK = "entities"
# A bulk costs about one page write per distinct entity, however many rows
# it copies: 50,000 rows at a time made batch publishing ~10% faster than
# 20,000 (measured). The price is on reads: an entity's history scans the
# unindexed tail, ~0.2 µs per row (~12 ms at 50,000), only while
# publishing runs at full speed.
EVERY_ROWS = 50_000
EVERY_S = 1.0  # and at most this long behind when publishing slows down

_INDEX = (
    "INSERT INTO entity_index (tenant_id, entity_type, entity_id, position) "
    "SELECT tenant_id, COALESCE(entity_type, ''), COALESCE(entity_id, ''), position "
    "FROM events WHERE position > ? AND (entity_type IS NOT NULL OR entity_id IS NOT NULL) "
    "ORDER BY 1, 2, 3, 4"
)


def indexed_upto(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT upto FROM log_marks WHERE name = ?", (MARK,)).fetchone()
    return int(row[0]) if row else 0


def index_tail(conn: sqlite3.Connection, head: int) -> int:
    """Index the log up to ``head`` (inside the caller's write
    transaction); returns the new mark."""
    upto = indexed_upto(conn)
    if head > upto:
        conn.execute(_INDEX, (upto,))
        conn.execute(
            "INSERT INTO log_marks (name, upto) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET upto = excluded.upto",
            (MARK, head),
        )
    return max(head, upto)


async def unindex(conn: AsyncConnection, tenant_id: str, rows: Sequence[Any]) -> None:
    """Drop the index rows of pruned events (``rows``: their position,
    entity_type and entity_id), inside retention's transaction."""
    keyed = [
        {"t": tenant_id, "et": r.entity_type or "", "eid": r.entity_id or "", "p": r.position}
        for r in rows
        if r.entity_type is not None or r.entity_id is not None
    ]
    if keyed:
        await conn.execute(
            delete(entity_index).where(
                entity_index.c.tenant_id == bindparam("t"),
                entity_index.c.entity_type == bindparam("et"),
                entity_index.c.entity_id == bindparam("eid"),
                entity_index.c.position == bindparam("p"),
            ),
            keyed,
        )


def entity_filter(
    tenant_ids: list[str] | None, entity_type: str | None, entity_id: str | None
) -> ColumnElement[bool]:
    """Positions of events about this entity: from the index up to the
    mark, from the log above it. The caller still compares the columns
    themselves, so this only narrows, never widens, what matches."""
    mark = select(log_marks.c.upto).where(log_marks.c.name == MARK).scalar_subquery()
    indexed = select(entity_index.c.position).where(
        *_matching(entity_index, tenant_ids, entity_type, entity_id)
    )
    # The tail is found by position (a range of the rowid); SQLite would
    # rather walk the tenant's whole time index, so the tenant term wears
    # SQLite's "not for an index" mark, a unary plus.
    tail = select(events.c.position).where(
        events.c.position > mark,
        *_matching(events, tenant_ids, entity_type, entity_id, tenant_indexed=False),
    )
    return events.c.position.in_(union_all(indexed, tail))


def _matching(
    table: Table,
    tenant_ids: list[str] | None,
    entity_type: str | None,
    entity_id: str | None,
    *,
    tenant_indexed: bool = True,
) -> list[ColumnElement[bool]]:
    keyed: list[ColumnElement[bool]] = []
    if tenant_ids is not None:
        tenant: ColumnElement[str] = table.c.tenant_id
        if not tenant_indexed:
            tenant = UnaryExpression(tenant, operator=custom_op("+"), type_=tenant.type)
        keyed.append(tenant.in_(tenant_ids))
    if entity_type is not None:
        keyed.append(table.c.entity_type == entity_type)
    if entity_id is not None:
        keyed.append(table.c.entity_id == entity_id)
    return keyed
