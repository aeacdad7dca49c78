"""The feed (``hub/feed.py``) against an in-memory log, no server and no
database: committed events reach the hub in position order with no gap
and no duplicate, whatever arrives when; the poller catches up on other
writers' commits and resets every stream when the log moves back; a failed
read costs latency, never an event."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable

import pytest

from memory_log import Gate, MemoryLog, Recorder
from tidings.errors import Unavailable
from tidings.hub import feed as feed_module
from tidings.hub.feed import Feed
from tidings.hub.hub import Hub


@pytest.fixture
def log() -> MemoryLog:
    return MemoryLog()


@pytest.fixture
def hub() -> Hub:
    return Hub(heartbeat_s=60.0, retry_ms=1000)


@pytest.fixture
async def feed(log: MemoryLog, hub: Hub) -> AsyncIterator[Feed]:
    feed = Feed(log, hub, poll_s=3600)  # type: ignore[arg-type]  (a fake of the read side)
    await feed.start()
    log.reads.clear()  # the start's head query
    yield feed
    await feed.stop()


@pytest.fixture
async def poller(log: MemoryLog, hub: Hub) -> AsyncIterator[Feed]:
    """A feed that polls the log every 10 ms."""
    feed = Feed(log, hub, poll_s=0.01)  # type: ignore[arg-type]
    await feed.start()
    yield feed
    await feed.stop()


def live(hub: Hub, stream: Recorder | None = None) -> Recorder:
    stream = stream or Recorder()
    hub.attach(stream)
    stream.live = True
    return stream


async def settled(feed: Feed) -> None:
    """Until no catch-up read is in flight."""
    for _ in range(1000):
        if feed._catching_up is None:
            return
        await asyncio.sleep(0)
    raise AssertionError("the feed never finished catching up")


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait for the poller (real time, short poll interval) to get there."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def test_start_takes_the_log_head(log: MemoryLog, hub: Hub) -> None:
    log.append(5)
    feed = Feed(log, hub, poll_s=2.0)  # type: ignore[arg-type]
    await feed.start()
    try:
        assert hub.position == 5  # only what commits from now on goes live
    finally:
        await feed.stop()


async def test_own_commits_go_straight_to_the_hub(log: MemoryLog, hub: Hub, feed: Feed) -> None:
    stream = live(hub)
    feed.committed(log.append(3))
    feed.committed(log.append(2))
    assert stream.positions == [1, 2, 3, 4, 5] and hub.position == 5
    assert log.reads == []  # no database read on the hot path
    feed.committed([])  # nothing committed: nothing happens
    assert stream.positions == [1, 2, 3, 4, 5]


async def test_a_gap_is_read_from_the_log(log: MemoryLog, hub: Hub, feed: Feed) -> None:
    stream = live(hub)
    log.append(2)  # another process committed 1 and 2; nobody told us
    feed.committed(log.append(2))  # ours: 3 and 4 would leave a gap
    assert stream.positions == []
    await settled(feed)
    assert stream.positions == [1, 2, 3, 4]
    assert log.reads == [("read_events", 0)]


async def test_events_already_delivered_are_not_delivered_again(
    log: MemoryLog, hub: Hub, feed: Feed
) -> None:
    stream = live(hub)
    first = log.append(3)
    feed.committed(first)
    feed.committed(first[1:])  # a late repeat of what the hub has
    await settled(feed)
    assert stream.positions == [1, 2, 3]
    assert [name for name, _ in log.reads] == []  # nothing newer: no read either


async def test_commits_during_a_read_are_neither_lost_nor_repeated(
    log: MemoryLog, hub: Hub, feed: Feed
) -> None:
    stream = live(hub)
    gate = log.before_read = Gate()
    log.append(2)  # someone else's
    feed.wake()
    await gate.reading.wait()
    log.before_read = None
    # While the read is in flight: a wake-up (coalesced) and more commits.
    feed.wake()
    log.append(1)
    gate.released.set()
    await settled(feed)
    assert stream.positions == [1, 2, 3]
    assert [after for _, after in log.reads] == [0, 3]  # woken again: one more read


async def test_own_commit_racing_a_read_is_not_repeated(
    log: MemoryLog, hub: Hub, feed: Feed
) -> None:
    stream = live(hub)
    gate = log.before_read = Gate()
    feed.wake()
    await gate.reading.wait()
    feed.committed(log.append(2))  # dispatched at once, while the read is out
    gate.released.set()
    await settled(feed)
    assert stream.positions == [1, 2]  # the read's copy of 1 and 2 is dropped


async def test_catching_up_reads_page_after_page(
    log: MemoryLog, hub: Hub, feed: Feed, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(feed_module, "READ_PAGE", 3)
    stream = live(hub)
    log.append(7)
    feed.wake()
    await settled(feed)
    assert stream.positions == list(range(1, 8))
    assert [after for _, after in log.reads] == [0, 3, 6]


@pytest.mark.parametrize(
    ("error", "logged"),
    [
        (Unavailable("database unavailable"), "cannot read the log"),
        (RuntimeError("a bug"), "catching up failed"),
    ],
    ids=["database", "bug"],
)
async def test_a_failed_read_is_logged_and_retried_without_a_gap(
    log: MemoryLog,
    hub: Hub,
    feed: Feed,
    caplog: pytest.LogCaptureFixture,
    error: Exception,
    logged: str,
) -> None:
    stream = live(hub)
    log.append(2)
    log.fail = error
    with caplog.at_level(logging.WARNING, "tidings.feed"):
        feed.wake()
        await settled(feed)
    assert stream.positions == [] and hub.position == 0
    assert logged in caplog.text
    log.fail = None
    feed.committed(log.append(1))  # 3 now leaves a gap: the feed reads 1..3
    await settled(feed)
    assert stream.positions == [1, 2, 3]


async def test_the_poller_retries_a_failed_read(log: MemoryLog, hub: Hub, poller: Feed) -> None:
    stream = live(hub)
    log.append(2)
    log.fail = Unavailable("database unavailable")
    poller.wake()
    await settled(poller)
    log.fail = None  # no wake-up, no commit of ours: the next poll finds them
    await until(lambda: stream.positions == [1, 2])


async def test_the_poller_catches_up_on_other_writers(
    log: MemoryLog, hub: Hub, poller: Feed
) -> None:
    stream = live(hub)
    log.append(3)  # no wake-up at all: the poll finds them
    await until(lambda: stream.positions == [1, 2, 3])


async def test_the_poller_survives_a_failing_head_query(
    log: MemoryLog, hub: Hub, poller: Feed
) -> None:
    stream = live(hub)
    log.fail = Unavailable("database unavailable")
    await until(lambda: log.reads.count(("head_position", None)) >= 4)  # polls on, failing
    log.fail = None
    log.append(1)
    await until(lambda: stream.positions == [1])


async def test_a_log_that_moved_back_resets_every_stream(
    log: MemoryLog, hub: Hub, poller: Feed, caplog: pytest.LogCaptureFixture
) -> None:
    first, second = live(hub), live(hub)
    poller.committed(log.append(5))
    del log.events[3:]  # restored from a backup that lacked 4 and 5
    with caplog.at_level(logging.ERROR, "tidings.feed"):
        await until(lambda: first.closed)
    assert hub.position == 3
    for stream in (first, second):
        assert stream.closed and stream.close_reason is not None
        assert stream.close_reason.reason == "log_rewound"
        reset = json.loads(stream.controls[-1].json)
        assert reset == {"type": "reset", "reason": "log_rewound", "lastEventId": "5"}
    assert "moved back from 5 to 3" in caplog.text
    poller.committed(log.append(1))  # position 4 again, in the restored log
    assert hub.position == 4


async def test_stop_ends_a_catch_up_in_flight(log: MemoryLog, hub: Hub) -> None:
    feed = Feed(log, hub, poll_s=2.0)  # type: ignore[arg-type]
    await feed.start()
    gate = log.before_read = Gate()  # never released
    feed.wake()
    await gate.reading.wait()
    task = feed._catching_up
    assert task is not None
    await feed.stop()
    await asyncio.sleep(0)
    assert task.cancelled() or task.done()
