"""The store figures of the health page, on both backends: the database's
size and the backlog (events waiting in the outbox, the oldest due work)."""

from __future__ import annotations

from tidings.store.base import JobRow
from tidings.store.sql import SQLStore


def row(tenant: str, position: int, run_at: float, status: str = "pending") -> JobRow:
    return JobRow(
        tenant,
        "rul_1",
        position,
        f"evt_{position}",
        "course.completed",
        status,
        0,
        run_at,
        run_at,
        run_at,
    )


async def test_the_database_has_a_size(store: SQLStore) -> None:
    assert await store.storage_bytes() > 0


async def test_the_backlog_is_the_oldest_due_claimable_job_of_the_scope(store: SQLStore) -> None:
    assert await store.jobs.backlog(100.0, None) == (0, None)
    await store.jobs.enqueue(
        [
            row("t1", 1, 50.0),
            row("t1", 2, 40.0, "dead"),
            row("t2", 3, 60.0),
            row("t2", 4, 200.0),
        ],  # not due yet
        force=True,
        now=100.0,
    )
    assert await store.jobs.backlog(100.0, None) == (0, 50.0)  # a dead job waits for nobody
    assert await store.jobs.backlog(100.0, ["t2"]) == (0, 60.0)
    assert await store.jobs.backlog(100.0, ["t3"]) == (0, None)
    assert await store.jobs.backlog(30.0, None) == (0, None)
