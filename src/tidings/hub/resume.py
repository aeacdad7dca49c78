"""Resuming a stream: replay the log after ``Last-Event-ID``, then go live.

No gap and no duplicate: the stream is attached to the hub first (but not
live, so the hub skips it); the replay reads the log up to the hub's
position, repeating until it has caught up, and flips the stream live in
the same step as its last check, with no ``await`` in between. Authorization
is applied at replay time with the viewer's *current* audiences.

A stored event never stops a resume: rows are read in a form that can be
encoded (see :func:`tidings.core.envelope.event_from_row`), and an event
whose frame still cannot be built is skipped, logged and counted like a
failed live dispatch (``Hub.report_failure``); the replay goes on.
"""

from __future__ import annotations

from tidings.core.audience import ALL_TENANTS, Viewer, can_see
from tidings.hub.hub import Hub
from tidings.hub.stream import BaseStream, Frame, control_frame
from tidings.store.base import LogQuery
from tidings.store.ports import EventLog

REPLAY_PAGE = 500
REPLAY_SLICE_BYTES = 64 * 1024


def tenant_scope(viewer: Viewer) -> list[str] | None:
    """The tenants whose events the viewer may see; None means all."""
    if ALL_TENANTS in viewer.platform_tenants:
        return None
    scope = [viewer.tenant_id] if viewer.tenant_id else []
    return scope + [t for t in viewer.platform_tenants if t not in scope]


async def catch_up(
    stream: BaseStream, hub: Hub, store: EventLog, *, after: int, max_replay: int
) -> int:
    """Replay what ``stream`` missed after position ``after``; returns how
    many events were replayed. The stream is live when this returns."""
    if after > hub.position:
        # The client knows a position this log never reached (another
        # database, or a restore): tell it to refetch, continue from here.
        _reset(stream, hub.position, "unknown_position")
        stream.live = True
        return 0
    cursor, sent = after, 0
    tenants = tenant_scope(stream.viewer)
    horizon = await store.log_horizon(tenants)
    if after < horizon:
        # Retention deleted events this client never saw: no silent gap.
        _reset(stream, hub.position, "too_far_behind")
        cursor = hub.position
    while not stream.closed:
        target = hub.position
        if cursor >= target:
            stream.last_position = max(stream.last_position, target)
            stream.live = True  # same step as the check above: no gap
            return sent
        rows = await store.query_events(
            LogQuery(tenant_ids=tenants, after=cursor, before=target + 1, limit=REPLAY_PAGE)
        )
        frames: list[Frame] = []
        for event in rows:
            if can_see(stream.viewer, event.tenant_id, event.audiences) and (
                stream.types is None or stream.types.matches(event.type)
            ):
                try:
                    frames.append(hub.frame_for(event, stream.viewer))
                except Exception:
                    hub.report_failure(event)
        if sent + len(frames) > max_replay:
            _reset(stream, target, "too_far_behind")
            cursor = target
            continue
        sent += len(frames)
        await _write_paced(stream, frames)
        cursor = rows[-1].position if len(rows) == REPLAY_PAGE else target
    return sent


async def _write_paced(stream: BaseStream, frames: list[Frame]) -> None:
    """Write in slices of about ``REPLAY_SLICE_BYTES``, waiting for the
    client between slices, so a long replay never piles up in memory."""
    start, size = 0, 0
    for end, frame in enumerate(frames, start=1):
        size += len(frame.json)
        if size >= REPLAY_SLICE_BYTES or end == len(frames):
            if stream.closed:
                return
            stream.deliver_many(frames[start:end], replay=True)
            await stream.drain()
            start, size = end, 0


def _reset(stream: BaseStream, position: int, reason: str) -> None:
    stream.write_control(control_frame("reset", {"reason": reason}, position=position))
    stream.last_position = position
