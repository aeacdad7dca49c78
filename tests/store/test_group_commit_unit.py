"""The group commit's guarantees (``store/group_commit.py``), with fakes of
its two ports and no database: concurrent callers share one commit, in
order; the feed hears of a commit before any caller is answered; every
caller is answered, on failure too; ``stop`` drains, then fails what is
left."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import pytest

from test_store import new
from tidings.core.envelope import Event
from tidings.errors import Conflict, Unavailable
from tidings.store.group_commit import GroupCommit
from tidings.store.records import AppendOutcome, AppendResult, NewEvent

pytestmark = pytest.mark.asyncio


class FakeLog:
    """The append of an event log: consecutive positions in call order. A
    commit waits for ``gate`` while it is closed, and raises ``failure``
    when one is set."""

    def __init__(self) -> None:
        self.head = 0
        self.commits: list[list[NewEvent]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.entered = asyncio.Event()  # a commit is in progress
        self.failure: BaseException | None = None

    async def append_events(self, events: Sequence[NewEvent]) -> AppendOutcome:
        self.commits.append(list(events))
        self.entered.set()
        await self.gate.wait()
        if self.failure is not None:
            raise self.failure
        results, stored = [], []
        for n in events:
            self.head += 1
            n.event.position = self.head
            results.append(AppendResult(n.event.id, self.head))
            stored.append(n.event)
        return AppendOutcome(results, stored)


class FakeFeed:
    """Records what it is told, and which callers had been answered then."""

    def __init__(self) -> None:
        self.told: list[list[int]] = []
        self.callers: list[asyncio.Task[list[AppendResult]]] = []
        self.answered_before: list[int] = []
        self.failure: Exception | None = None

    def committed(self, events: Sequence[Event], committed_at: float | None = None) -> None:
        self.told.append([e.position for e in events])
        self.answered_before.append(sum(task.done() for task in self.callers))
        if self.failure is not None:
            raise self.failure


@pytest.fixture
async def parts() -> AsyncIterator[tuple[GroupCommit, FakeLog, FakeFeed]]:
    log, feed = FakeLog(), FakeFeed()
    commit = GroupCommit(log, feed)  # type: ignore[arg-type]  # a fake of the append alone
    commit.start()
    yield commit, log, feed
    log.gate.set()
    await commit.stop()


def call(commit: GroupCommit, feed: FakeFeed, count: int = 1) -> asyncio.Task[list[AppendResult]]:
    """A caller appending ``count`` events (the feed keeps the task)."""
    feed.callers.append(asyncio.create_task(commit.append([new() for _ in range(count)])))
    return feed.callers[-1]


async def held_open(log: FakeLog) -> None:
    """Wait until a commit is in progress (and held at the gate)."""
    await asyncio.wait_for(log.entered.wait(), 5)
    log.entered.clear()


async def test_callers_waiting_during_a_commit_share_the_next_one_in_order(
    parts: tuple[GroupCommit, FakeLog, FakeFeed],
) -> None:
    commit, log, feed = parts
    log.gate.clear()
    first = call(commit, feed)
    await held_open(log)
    waiting = [call(commit, feed, 2), call(commit, feed, 1), call(commit, feed, 3)]
    await asyncio.sleep(0.01)
    log.gate.set()
    assert [r.position for r in await first] == [1]
    answers = [[r.position for r in await task] for task in waiting]
    assert answers == [[2, 3], [4], [5, 6, 7]]  # each caller its own, in call order
    assert [len(c) for c in log.commits] == [1, 6]  # three callers, one commit
    assert commit.commits == 2 and commit.appended == 7
    assert feed.told == [[1], [2, 3, 4, 5, 6, 7]]


async def test_the_feed_hears_of_a_commit_before_any_of_its_callers_is_answered(
    parts: tuple[GroupCommit, FakeLog, FakeFeed],
) -> None:
    commit, log, feed = parts
    log.gate.clear()
    tasks = [call(commit, feed) for _ in range(3)]
    await held_open(log)
    log.gate.set()
    await asyncio.gather(*tasks)
    assert feed.answered_before == [0] * len(feed.told)


async def test_a_commit_takes_at_most_max_batch_events_but_never_splits_a_caller(
    parts: tuple[GroupCommit, FakeLog, FakeFeed],
) -> None:
    commit, log, feed = parts
    commit.max_batch = 4
    log.gate.clear()
    first = call(commit, feed)
    await held_open(log)
    rest = [call(commit, feed, 3), call(commit, feed, 2), call(commit, feed, 5)]
    await asyncio.sleep(0.01)
    log.gate.set()
    await asyncio.gather(first, *rest)
    # 3 fits, 3+2 does not; a caller larger than the limit commits alone.
    assert [len(c) for c in log.commits] == [1, 3, 2, 5]


async def test_a_failed_commit_fails_every_caller_in_it_and_the_loop_goes_on(
    parts: tuple[GroupCommit, FakeLog, FakeFeed],
) -> None:
    commit, log, feed = parts
    for failure, expected in ((Conflict("no"), Conflict), (RuntimeError("bug"), Unavailable)):
        log.gate.clear()
        tasks = [call(commit, feed) for _ in range(3)]
        await held_open(log)
        log.failure = failure
        log.gate.set()
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        assert all(isinstance(o, expected) for o in outcomes), outcomes
        log.failure = None
    assert [r.position for r in await call(commit, feed)] == [1]  # still committing
    assert feed.told == [[1]]  # the feed heard only of what committed


async def test_callers_get_their_positions_when_the_feed_fails_after_the_commit(
    parts: tuple[GroupCommit, FakeLog, FakeFeed],
) -> None:
    commit, _log, feed = parts
    feed.failure = RuntimeError("feed broke")
    assert [r.position for r in await call(commit, feed, 2)] == [1, 2]  # durable already


async def test_stop_drains_queued_work_while_the_loop_lives() -> None:
    log, feed = FakeLog(), FakeFeed()
    commit = GroupCommit(log, feed)  # type: ignore[arg-type]
    commit.start()
    log.gate.clear()
    first = call(commit, feed)
    await held_open(log)
    queued = [call(commit, feed) for _ in range(2)]  # behind the commit in progress
    await asyncio.sleep(0.01)
    stopping = asyncio.create_task(commit.stop(timeout_s=5))
    await asyncio.sleep(0.02)
    assert not stopping.done()  # waiting for the queued work
    log.gate.set()
    await asyncio.wait_for(stopping, 5)
    assert [[r.position for r in await t] for t in (first, *queued)] == [[1], [2], [3]]
    with pytest.raises(Unavailable):  # stopped: no more writes
        await commit.append([new()])


async def test_stop_fails_what_is_left_when_a_commit_hangs_past_the_timeout() -> None:
    log, feed = FakeLog(), FakeFeed()
    commit = GroupCommit(log, feed)  # type: ignore[arg-type]
    commit.start()
    log.gate.clear()  # never opened: the commit hangs
    in_commit = call(commit, feed)
    await held_open(log)
    queued = [call(commit, feed) for _ in range(2)]
    await asyncio.sleep(0.01)
    await asyncio.wait_for(commit.stop(timeout_s=0.05), 5)  # shutdown always ends
    for task in (in_commit, *queued):
        with pytest.raises(Unavailable):
            await task
    assert log.head == 0
