"""Resuming a stream (``hub/resume.py``) against an in-memory log, no
server and no database: the replay hands over everything after the
resume point exactly once, in order, including what commits while it
reads, and the stream goes live with no gap; a point the log never reached
or no longer holds, or a replay too long, is a ``reset``; authorization is
the viewer's; an event that cannot be framed is skipped and counted."""

from __future__ import annotations

import json
from typing import Any

import pytest

from memory_log import TENANT, MemoryLog, Recorder, make_event, reader
from tidings.core.audience import ALL_TENANTS
from tidings.errors import Unavailable
from tidings.hub import resume as replay_module
from tidings.hub.hub import Hub
from tidings.hub.resume import catch_up, tenant_scope

MAX_REPLAY = 10_000


@pytest.fixture
def log() -> MemoryLog:
    return MemoryLog()


@pytest.fixture
def hub() -> Hub:
    return Hub(heartbeat_s=60.0, retry_ms=1000)


def committed(log: MemoryLog, hub: Hub, count: int, **fields: Any) -> None:
    """``count`` events committed and dispatched, as the feed would."""
    hub.dispatch(log.append(count, **fields))


def attached(hub: Hub, stream: Recorder | None = None) -> Recorder:
    stream = stream or Recorder()
    hub.attach(stream)  # attached first, not live: the hub skips it
    return stream


def resets(stream: Recorder) -> list[dict[str, Any]]:
    return [json.loads(frame.json) for frame in stream.controls]


async def replay(stream: Recorder, hub: Hub, log: MemoryLog, after: int, **options: Any) -> int:
    options.setdefault("max_replay", MAX_REPLAY)
    return await catch_up(stream, hub, log, after=after, **options)  # type: ignore[arg-type]


async def test_replays_what_was_missed_then_goes_live(log: MemoryLog, hub: Hub) -> None:
    committed(log, hub, 10)
    stream = attached(hub)
    assert await replay(stream, hub, log, after=4) == 6
    assert stream.positions == [5, 6, 7, 8, 9, 10]
    assert stream.live and stream.last_position == 10 and resets(stream) == []
    assert all(replayed for _, replayed in stream.writes)  # paced replay writes
    committed(log, hub, 2)
    assert stream.positions == [5, 6, 7, 8, 9, 10, 11, 12]  # live now, no gap


async def test_resume_at_the_head_is_live_at_once(log: MemoryLog, hub: Hub) -> None:
    committed(log, hub, 3)
    stream = attached(hub)
    assert await replay(stream, hub, log, after=3) == 0
    assert stream.live and stream.positions == [] and stream.last_position == 3
    assert log.queries == []


async def test_commits_during_the_replay_are_neither_lost_nor_repeated(
    log: MemoryLog, hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(replay_module, "REPLAY_PAGE", 2)
    committed(log, hub, 5)
    stream = attached(hub)
    more = iter([3, 1, 0, 0, 0, 0, 0])

    async def commit_meanwhile() -> None:  # the feed dispatches while the replay awaits
        committed(log, hub, next(more))

    log.before_read = commit_meanwhile
    sent = await replay(stream, hub, log, after=0)
    log.before_read = None
    assert stream.positions == list(range(1, 10)) and sent == 9
    assert stream.live and stream.last_position == hub.position == 9
    committed(log, hub, 1)
    assert stream.positions == list(range(1, 11))


async def test_reads_the_log_page_after_page(
    log: MemoryLog, hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(replay_module, "REPLAY_PAGE", 3)
    committed(log, hub, 8)
    stream = attached(hub)
    await replay(stream, hub, log, after=1)
    assert stream.positions == list(range(2, 9))
    assert [(q.after, q.before, q.limit) for q in log.queries] == [(1, 9, 3), (4, 9, 3), (7, 9, 3)]
    assert all(q.tenant_ids == [TENANT] for q in log.queries)


async def test_a_position_the_log_never_reached_is_a_reset(log: MemoryLog, hub: Hub) -> None:
    committed(log, hub, 3)
    stream = attached(hub)
    assert await replay(stream, hub, log, after=99) == 0
    assert resets(stream) == [{"type": "reset", "reason": "unknown_position"}]
    assert stream.controls[0].position == 3  # ``id: 3``: the client goes on from here
    assert stream.live and stream.last_position == 3 and log.reads == []


async def test_a_pruned_resume_point_is_a_reset_not_a_gap(log: MemoryLog, hub: Hub) -> None:
    committed(log, hub, 6)
    del log.events[:4]  # retention deleted 1..4 of this tenant
    log.pruned_through = {TENANT: 4, "other": 6}  # another tenant's pruning does not count
    stream = attached(hub)
    assert await replay(stream, hub, log, after=3) == 0  # 4 is gone
    assert resets(stream) == [{"type": "reset", "reason": "too_far_behind"}]
    assert stream.controls[0].position == 6 and stream.positions == [] and stream.live
    resumed = attached(hub)
    assert await replay(resumed, hub, log, after=4) == 2  # at the horizon: nothing is gone
    assert resumed.positions == [5, 6] and resets(resumed) == []


async def test_a_replay_longer_than_max_replay_is_a_reset(log: MemoryLog, hub: Hub) -> None:
    committed(log, hub, 6)
    stream = attached(hub)
    assert await replay(stream, hub, log, after=0, max_replay=5) == 0
    assert resets(stream) == [{"type": "reset", "reason": "too_far_behind"}]
    assert stream.controls[0].position == 6 and stream.positions == [] and stream.live
    committed(log, hub, 1)
    assert stream.positions == [7]


async def test_replay_shows_only_what_the_viewer_may_see(log: MemoryLog, hub: Hub) -> None:
    committed(log, hub, 1)
    committed(log, hub, 1, audiences=("permission:tasks.read",))  # not this viewer's
    committed(log, hub, 1, type="tasks.assignment.created")  # filtered out by type
    committed(log, hub, 1, tenant="t2")  # another tenant (the query scope leaves it out)
    committed(log, hub, 1)
    stream = attached(hub, Recorder(types="qms.*"))
    assert await replay(stream, hub, log, after=0) == 2
    assert stream.positions == [1, 5]
    assert stream.live and stream.last_position == 5  # skipped events still move it on


async def test_authorization_is_the_viewers_current_one(
    log: MemoryLog, hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(replay_module, "REPLAY_PAGE", 2)
    committed(log, hub, 6)
    stream = attached(hub)
    queries = 0

    async def revoke_after_the_first_page() -> None:
        nonlocal queries
        if log.reads[-1][0] == "query_events":
            queries += 1
            if queries == 2:  # the grant is revoked while the replay runs
                hub.update_viewer(stream, reader(audiences=frozenset({"permission:other"})))

    log.before_read = revoke_after_the_first_page
    await replay(stream, hub, log, after=0)
    assert stream.positions == [1, 2] and stream.live


async def test_an_event_that_cannot_be_framed_is_skipped_and_counted(
    log: MemoryLog, hub: Hub
) -> None:
    log.events.append(make_event(1))
    log.events.append(make_event(2, data={"unencodable": object()}))
    log.events.append(make_event(3))
    hub.position = 3
    stream = attached(hub)
    assert await replay(stream, hub, log, after=0) == 2
    assert stream.positions == [1, 3] and stream.live
    assert hub.stats.dispatch_errors == 1


async def test_long_replays_are_written_in_paced_slices(
    log: MemoryLog, hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    committed(log, hub, 10)
    size = len(hub.frame_for(log.events[0], reader()).json)
    monkeypatch.setattr(replay_module, "REPLAY_SLICE_BYTES", 3 * size)
    stream = attached(hub)
    await replay(stream, hub, log, after=0)
    assert stream.positions == list(range(1, 11))
    assert [frames for frames, _ in stream.writes] == [3, 3, 3, 1]
    assert stream.drains == 4  # the client is waited for after each slice


async def test_a_stream_closed_during_the_replay_stops_it(log: MemoryLog, hub: Hub) -> None:
    committed(log, hub, 4)
    stream = attached(hub)

    async def client_leaves() -> None:
        hub.detach(stream)

    log.before_read = client_leaves
    assert await replay(stream, hub, log, after=0) == 0
    assert stream.positions == [] and not stream.live


async def test_a_failed_read_raises_and_leaves_the_stream_not_live(
    log: MemoryLog, hub: Hub
) -> None:
    committed(log, hub, 2)
    stream = attached(hub)
    log.fail = Unavailable("database unavailable")
    with pytest.raises(Unavailable):
        await replay(stream, hub, log, after=0)
    assert not stream.live and stream.positions == []  # the caller closes it


def test_tenant_scope() -> None:
    assert tenant_scope(reader()) == [TENANT]
    assert tenant_scope(reader(platform_tenants=("t2", TENANT))) == [TENANT, "t2"]
    assert tenant_scope(reader(platform_tenants=(ALL_TENANTS,))) is None
    assert tenant_scope(reader(tenant=None, platform_tenants=("t2",))) == ["t2"]  # type: ignore[arg-type]
