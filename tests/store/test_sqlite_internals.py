"""SQLite's internals (``store/sql/sqlite.py``, ``store/entity_index.py``):
the one PRAGMA set-up on every connection, the one-hop writer, the entity
index built in bulk behind the log, and the page size of new databases."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from test_store import new
from tidings.store.base import LifecycleChange
from tidings.store.migrate import upgrade
from tidings.store.schema import SQLITE_PAGE_SIZE
from tidings.store.sql import SQLStore
from tidings.store.sql.sqlite import SQLiteBackend

pytestmark = pytest.mark.asyncio


async def sqlite_store(tmp_path: Path, name: str = "internals.db", **kw: Any) -> SQLStore:
    url = f"sqlite:///{tmp_path / name}"
    await upgrade(url)
    return SQLStore(url, **kw)


async def test_every_connection_gets_the_same_pragmas(tmp_path: Path) -> None:
    """Readers, the writer and the appender: WAL, the configured
    synchronous level and a busy timeout; the appender also its cache and
    its larger WAL checkpoint."""
    store = await sqlite_store(tmp_path, sqlite_synchronous="NORMAL")
    backend = store.backend
    assert isinstance(backend, SQLiteBackend)
    wanted = {"journal_mode": "wal", "synchronous": 1, "busy_timeout": 10000}  # NORMAL = 1

    async def pragmas(engine: Any) -> dict[str, Any]:
        async with engine.connect() as conn:
            return {
                name: (await conn.exec_driver_sql(f"PRAGMA {name}")).scalar_one() for name in wanted
            }

    def appender_pragmas() -> dict[str, Any]:
        conn = backend.appender._connection()
        names = [*wanted, "cache_size", "wal_autocheckpoint"]
        return {name: conn.execute(f"PRAGMA {name}").fetchone()[0] for name in names}

    try:
        await store.append_events([new()])
        assert await pragmas(backend.reader) == wanted
        assert await pragmas(backend.writer) == wanted
        found = await asyncio.get_running_loop().run_in_executor(
            backend.appender._executor, appender_pragmas
        )
        assert found == {
            **wanted,
            "cache_size": -65536,
            "wal_autocheckpoint": (64 << 20) // SQLITE_PAGE_SIZE,
        }
    finally:
        await store.close()


async def test_an_append_is_one_hop_to_the_appenders_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole append transaction (duplicate check, head, inserts,
    commit) is one job for the appender's thread, and so is a transition's
    compare-and-set with it."""
    store = await sqlite_store(tmp_path)
    backend = store.backend
    assert isinstance(backend, SQLiteBackend)
    executor = backend.appender._executor
    hops: list[str] = []
    submit = executor.submit

    def counted(fn: Any, *args: Any, **kwargs: Any) -> Any:
        hops.append(getattr(fn, "__name__", repr(fn)))
        return submit(fn, *args, **kwargs)

    monkeypatch.setattr(executor, "submit", counted)
    try:
        await store.append_events([new(key="k1"), new(id="evt_x"), new()])
        assert hops == ["_append"]
        await store.put_tenant("t1", "T1", {})
        hops.clear()
        change = LifecycleChange("ACTIVE", None, None, "user")
        await store.transition_tenant("t1", "CREATED", change, new())
        assert hops == ["_append"]
    finally:
        await store.close()


async def test_pruned_events_leave_the_entity_index(tmp_path: Path) -> None:
    store = await sqlite_store(tmp_path)
    try:
        old = time.time() - 1000
        await store.append_events([new("t1", created=old), new("t1", created=old)])
        await store.index_entities()
        assert await store.prune_events("t1", time.time(), batch=10) == 2
        await store.append_events([new("t1", entity="c1")])
        await store.index_entities()
        async with store.backend.reader.connect() as conn:
            rows = (await conn.exec_driver_sql("SELECT position FROM entity_index")).all()
        assert [r[0] for r in rows] == [3]
    finally:
        await store.close()


async def test_sqlite_indexes_entities_by_itself_by_count_and_by_time(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tidings.store import entity_index

    monkeypatch.setattr(entity_index, "EVERY_ROWS", 5)
    monkeypatch.setattr(entity_index, "EVERY_S", 0.05)
    url = f"sqlite:///{tmp_path / 'lazy.db'}"
    await upgrade(url)
    store = SQLStore(url)

    async def indexed() -> list[int]:
        async with store.backend.reader.connect() as conn:
            rows = await conn.exec_driver_sql("SELECT position FROM entity_index ORDER BY 1")
            return [r[0] for r in rows]

    try:
        await store.append_events([new(entity=f"e{i}") for i in range(6)])
        assert await indexed() == [1, 2, 3, 4, 5, 6]  # 6 >= 5 rows: right after the commit
        await store.append_events([new(entity="e9")])
        assert await indexed() == [1, 2, 3, 4, 5, 6]
        for _ in range(100):  # and the straggler within EVERY_S
            await asyncio.sleep(0.02)
            if await indexed() == [1, 2, 3, 4, 5, 6, 7]:
                break
        assert await indexed() == [1, 2, 3, 4, 5, 6, 7]
    finally:
        await store.close()


async def test_sqlite_indexes_a_tail_left_by_a_stopped_process_when_it_opens(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tidings.store import entity_index

    monkeypatch.setattr(entity_index, "EVERY_S", 3600.0)
    url = f"sqlite:///{tmp_path / 'tail.db'}"
    await upgrade(url)
    first = SQLStore(url)
    await first.append_events([new(entity="e1"), new(entity="e2")])
    await first.close()
    with sqlite3.connect(tmp_path / "tail.db") as conn:
        assert conn.execute("SELECT COUNT(*) FROM entity_index").fetchone() == (0,)
    second = SQLStore(url)
    await second.open()
    await second.close()
    with sqlite3.connect(tmp_path / "tail.db") as conn:
        assert conn.execute("SELECT position FROM entity_index ORDER BY 1").fetchall() == [
            (1,),
            (2,),
        ]


async def test_the_migration_indexes_the_entities_of_an_existing_sqlite_log(tmp_path: Any) -> None:
    from alembic import command

    from tidings.store.migrate import alembic_config

    url = f"sqlite:///{tmp_path / 'old.db'}"
    await asyncio.to_thread(command.upgrade, alembic_config(url), "0008")
    row = "INSERT INTO events VALUES (?, ?, 't1', 'x.y.z', ?, ?, 0, NULL, '{}')"
    with sqlite3.connect(tmp_path / "old.db") as conn:
        conn.executemany(
            row, [(1, "e1", "car", "c1"), (2, "e2", None, None), (3, "e3", None, "c2")]
        )
    await upgrade(url)
    with sqlite3.connect(tmp_path / "old.db") as conn:
        assert conn.execute("SELECT * FROM entity_index").fetchall() == [
            ("t1", "", "c2", 3),
            ("t1", "car", "c1", 1),
        ]
        assert conn.execute("SELECT * FROM log_marks").fetchall() == [("entities", 3)]


async def test_new_sqlite_databases_get_large_pages_and_old_ones_keep_theirs(
    tmp_path: Any,
) -> None:
    new, old = tmp_path / "new.db", tmp_path / "old.db"
    with sqlite3.connect(old) as conn:
        conn.execute("CREATE TABLE kept (x)")  # a database made before: 4 KiB pages
    for path in (new, old):
        await upgrade(f"sqlite:///{path}")
    with sqlite3.connect(new) as conn:
        assert conn.execute("PRAGMA page_size").fetchone() == (SQLITE_PAGE_SIZE,)
        assert conn.execute("SELECT COUNT(*) FROM events").fetchone() == (0,)
    with sqlite3.connect(old) as conn:
        assert conn.execute("PRAGMA page_size").fetchone() == (4096,)
        assert conn.execute("SELECT COUNT(*) FROM events").fetchone() == (0,)
