"""The portal's SQLite transactions: a read never waits for a writer, and
concurrent writers queue in this process instead of in SQLite's busy
handler (none fails with "database is locked")."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import func, select

from tidings.portal import tables
from tidings.portal.database import Database, create_tables


def organisation(number: int) -> dict[str, str]:
    return {"id": f"org-{number}", "name": f"Organisation {number}"}


async def test_a_read_does_not_wait_for_the_writer(tmp_path: Path) -> None:
    db = Database.open(f"sqlite:///{tmp_path / 'portal.db'}")
    try:
        await create_tables(db.engine)
        async with db.write() as writer:
            await writer.execute(tables.organisations.insert().values(**organisation(1)))
            # The write lock is held until this block ends; a read that
            # asked for it would wait the busy timeout (30 s).
            async with asyncio.timeout(5), db.read() as reader:
                count = (
                    await reader.execute(select(func.count()).select_from(tables.organisations))
                ).scalar_one()
            assert count == 0  # its snapshot: the write is not committed yet
        async with db.read() as reader:
            rows = (await reader.execute(select(tables.organisations.c.id))).scalars().all()
        assert rows == ["org-1"]
    finally:
        await db.engine.dispose()


async def test_concurrent_writers_all_commit(tmp_path: Path) -> None:
    db = Database.open(f"sqlite:///{tmp_path / 'portal.db'}")
    try:
        await create_tables(db.engine)

        async def write(number: int) -> None:
            async with db.write() as conn:
                seen = (
                    await conn.execute(select(func.count()).select_from(tables.organisations))
                ).scalar_one()
                await asyncio.sleep(0)  # let the others try meanwhile
                await conn.execute(
                    tables.organisations.insert().values(id=f"org-{number}", name=f"after {seen}")
                )

        await asyncio.gather(*(write(n) for n in range(20)))
        async with db.read() as reader:
            names = (await reader.execute(select(tables.organisations.c.name))).scalars().all()
        # Each writer saw every earlier commit: one at a time, none lost.
        assert sorted(names) == sorted(f"after {n}" for n in range(20))
    finally:
        await db.engine.dispose()
