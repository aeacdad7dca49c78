"""Writing to the outbox inside the host's own transaction.

:meth:`Outbox.add` (sync ``Connection``/``Session``) and
:meth:`Outbox.add_async` (``AsyncConnection``/``AsyncSession``) insert one
row in the caller's open transaction: it commits or rolls back with the
host's own rows. Nothing is written for an envelope that can never be
published: it is refused with :class:`tidings.errors.InvalidInput` naming
the field, before the insert.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import orjson
from sqlalchemy import Table, delete, insert, select, text, update
from sqlalchemy.sql import Delete, Select, Update

from tidings.config import DEFAULT_MAX_EVENT_BYTES
from tidings.core.envelope import DEFAULT_MAX_DEPTH, check_depth, now_iso, parse_event
from tidings.core.ids import new_event_id
from tidings.errors import InvalidInput, PayloadTooLarge
from tidings.outbox.table import PENDING, REFUSED, lock_key
from tidings.services.auth import OPERATOR

if TYPE_CHECKING:
    from tidings.node import Tidings


class SyncExecutor(Protocol):
    """A SQLAlchemy ``Connection`` or ``Session``."""

    def execute(self, statement: Any, /) -> Any: ...


class AsyncExecutor(Protocol):
    """A SQLAlchemy ``AsyncConnection`` or ``AsyncSession``."""

    async def execute(self, statement: Any, /) -> Any: ...


@dataclass(frozen=True, slots=True)
class RefusedRow:
    """A row the hub refused: kept until :meth:`Outbox.retry` (or deleted by hand)."""

    seq: int
    event_id: str
    tenant_id: str
    event_type: str
    error: str
    attempts: int
    refused_at: float | None
    envelope: dict[str, Any]


class Outbox:
    """The outbox of one table (see :func:`tidings.outbox.outbox_table`).

    ``hub``: when given, :meth:`add` also checks the envelope against the
    hub's catalog (type, schema, audiences) the way its ingest does, so a
    typo fails in the host's request rather than in the relay. The tenant's
    existence and state are checked by the relay only (they may change).

    ``ordered`` (PostgreSQL): a writing transaction takes a transaction
    advisory lock of this table at its insert, held until it commits or
    rolls back, so ``seq`` order is commit order and the log holds the
    events in the order the host committed them (on SQLite, which has one
    writer, that holds anyway). The cost: transactions that add events
    commit one after the other from their insert on, so add the event last
    in the transaction. ``ordered=False`` drops the lock when the order of
    each entity's own events is enough (serialize the writes to an entity,
    as a row lock on it does)."""

    def __init__(
        self,
        table: Table,
        *,
        hub: Tidings | None = None,
        max_event_bytes: int | None = None,
        max_depth: int | None = None,
        ordered: bool = True,
    ) -> None:
        self.table = table
        self.hub = hub
        self.ordered = ordered
        self._writers_lock = text("SELECT pg_advisory_xact_lock(:key)").bindparams(
            key=lock_key(table.fullname, "writers")
        )
        settings = hub.settings if hub is not None else None
        self.max_event_bytes = max_event_bytes or (
            settings.max_event_bytes if settings else DEFAULT_MAX_EVENT_BYTES
        )
        self.max_depth = max_depth or (settings.max_event_depth if settings else DEFAULT_MAX_DEPTH)

    # -- writing ----------------------------------------------------------

    def add(self, conn: SyncExecutor, event: Mapping[str, Any]) -> str:
        """Insert ``event`` in ``conn``'s open transaction (a sync
        ``Connection`` or ``Session``); returns its event id (assigned
        when missing). Raises :class:`InvalidInput` and writes nothing for
        an envelope that can never be published."""
        row = self.row(event)
        if self._serialized(conn):
            conn.execute(self._writers_lock)
        conn.execute(insert(self.table).values(**row))
        return str(row["event_id"])

    async def add_async(self, conn: AsyncExecutor, event: Mapping[str, Any]) -> str:
        """:meth:`add` for an ``AsyncConnection`` or ``AsyncSession``."""
        row = self.row(event)
        if self._serialized(conn):
            await conn.execute(self._writers_lock)
        await conn.execute(insert(self.table).values(**row))
        return str(row["event_id"])

    def _serialized(self, conn: Any) -> bool:
        """Whether ``conn``'s writers must take the table's lock (``ordered``
        on PostgreSQL; a Connection knows its dialect, a Session its bind)."""
        if not self.ordered:
            return False
        dialect = getattr(conn, "dialect", None) or conn.get_bind().dialect
        return bool(dialect.name == "postgresql")

    def row(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """The row for ``event``, validated: its id and timestamp (the
        moment of the host's write) are filled in when missing."""
        if not isinstance(event, Mapping):
            raise InvalidInput("the event must be a JSON object", field="")
        envelope = dict(event)
        if envelope.get("id") is None:
            envelope["id"] = new_event_id()  # what makes the relay idempotent
        if envelope.get("timestamp") is None:
            envelope["timestamp"] = now_iso()
        draft = parse_event(envelope)  # shape, type, tenantId, id, timestamp
        check_depth(draft, self.max_depth)
        body = _encode(envelope)
        if len(body) > self.max_event_bytes:
            raise PayloadTooLarge(
                f"the event is {len(body)} bytes; the limit is {self.max_event_bytes}", field=""
            )
        if self.hub is not None:
            self.hub.ingest.prepare(envelope, OPERATOR)  # the catalog's checks
        return {
            "event_id": draft.id,
            "tenant_id": draft.tenant_id,
            "event_type": draft.type,
            "body": body.decode(),
            "created_at": time.time(),
            "state": PENDING,
            "attempts": 0,
        }

    # -- refused rows -----------------------------------------------------

    def refused_query(self, limit: int = 100) -> Select[Any]:
        """The refused rows, oldest first (execute it, or use :meth:`refused`)."""
        t = self.table
        return select(t).where(t.c.state == REFUSED).order_by(t.c.seq).limit(limit)

    def refused(self, conn: SyncExecutor, limit: int = 100) -> list[RefusedRow]:
        return [refused_row(r) for r in conn.execute(self.refused_query(limit)).mappings()]

    async def refused_async(self, conn: AsyncExecutor, limit: int = 100) -> list[RefusedRow]:
        result = await conn.execute(self.refused_query(limit))
        return [refused_row(r) for r in result.mappings()]

    def retry_statement(self, event_ids: list[str] | None = None) -> Update:
        """Put refused rows (all, or those ids) back in line: the relay
        takes them in their original ``seq`` order, before newer rows."""
        t = self.table
        stmt = update(t).where(t.c.state == REFUSED).values(state=PENDING)
        if event_ids is not None:
            stmt = stmt.where(t.c.event_id.in_(event_ids))
        return stmt

    def retry(self, conn: SyncExecutor, event_ids: list[str] | None = None) -> int:
        return int(conn.execute(self.retry_statement(event_ids)).rowcount)

    async def retry_async(self, conn: AsyncExecutor, event_ids: list[str] | None = None) -> int:
        return int((await conn.execute(self.retry_statement(event_ids))).rowcount)

    def discard_statement(self, event_ids: list[str]) -> Delete:
        """Drop refused rows for good (an operator's decision, never the relay's)."""
        t = self.table
        return delete(t).where(t.c.state == REFUSED, t.c.event_id.in_(event_ids))


def refused_row(row: Mapping[str, Any]) -> RefusedRow:
    return RefusedRow(
        seq=int(row["seq"]),
        event_id=row["event_id"],
        tenant_id=row["tenant_id"],
        event_type=row["event_type"],
        error=row["error"] or "",
        attempts=int(row["attempts"]),
        refused_at=row["refused_at"],
        envelope=orjson.loads(row["body"]),
    )


def _encode(envelope: dict[str, Any]) -> bytes:
    """The envelope as JSON, or :class:`InvalidInput` naming the first
    value JSON cannot carry."""
    try:
        return orjson.dumps(envelope)
    except TypeError:
        field = _unencodable(envelope) or ""
        raise InvalidInput("the event holds a value JSON cannot encode", field=field) from None


def _unencodable(value: Any, pointer: str = "") -> str | None:
    """The JSON pointer of the first value below ``value`` orjson refuses."""
    items: list[tuple[str, Any]]
    if isinstance(value, dict):
        if any(not isinstance(k, str) for k in value):
            return pointer
        items = list(value.items())
    elif isinstance(value, list | tuple):
        items = [(str(i), v) for i, v in enumerate(value)]
    else:
        return pointer
    for key, child in items:
        try:
            orjson.dumps(child)
        except TypeError:
            token = key.replace("~", "~0").replace("/", "~1")
            return _unencodable(child, f"{pointer}/{token}")
    return pointer
