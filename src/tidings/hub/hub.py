"""The hub: committed events in, bytes to exactly the right streams out.

``dispatch`` is synchronous and runs on the event loop right after a commit
(or after the feed read the log): for each event it looks up the matching
streams in the :class:`SubscriptionIndex`, encodes the event once per
redaction variant and hands the shared frame to each stream. A batch of
several events is coalesced into one write per stream.

Ordering: the feed calls ``dispatch`` with contiguous positions only, so
``position`` is always "every event up to here has been offered to every
live stream". Replaying streams read the log up to ``position`` and then go
live without awaiting in between (see :func:`tidings.hub.resume.catch_up`).

Redaction is decided per (tenant, type): the sensitive fields come from
the event's own tenant's definition of its type, never another tenant's.

Isolation: ``dispatch`` never raises. An error while encoding, redacting or
handing over one event is confined to that event: it is logged once (with
its position), counted in ``stats.dispatch_errors``, and the streams still
waiting for it go without it (it stays in the log: history and resume
serve it); every other event and stream carries on, and ``position``
moves past it either way (or the feed would offer it again forever).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field

import orjson

from tidings.core.audience import Viewer
from tidings.core.envelope import Event
from tidings.core.histogram import LATENCY_BUCKETS_S, Buckets
from tidings.core.redaction import Variant, carried, redact, variant_for
from tidings.hub.index import SubscriptionIndex
from tidings.hub.stream import (
    SHUTDOWN,
    BaseStream,
    CloseReason,
    Frame,
    jittered_retry_ms,
)
from tidings.supervision import Supervisor

log = logging.getLogger("tidings.hub")
HEARTBEAT_TASK = "hub.heartbeat"

# (tenant, type) -> the type's sensitive fields as that tenant defines it.
SensitiveLookup = Callable[[str, str], Mapping[str, str]]
FrameSource = Frame | Callable[[Viewer], Frame]


def _no_sensitive(_tenant: str, _type: str) -> Mapping[str, str]:
    return {}


MAX_SAMPLED = 10_000  # latencies kept for the health sampler between its reads


@dataclass
class HubStats:
    """Counters the metrics endpoint and the health page read.

    ``latency`` counts every dispatch's commit-to-write time for ``/metrics``
    (cumulative, never drained); ``latencies`` is the health sampler's
    share, which it drains once a second (the newest :data:`MAX_SAMPLED`
    kept when it does not)."""

    delivered: int = 0
    dispatched_events: int = 0
    slow_disconnects: int = 0
    dispatch_errors: int = 0  # events (or batches) that could not be handed over
    opened: int = 0
    closed: int = 0
    opened_by: dict[str, int] = field(default_factory=dict)  # per transport (sse, ws)
    closed_by: dict[str, int] = field(default_factory=dict)
    latency: Buckets = field(default_factory=lambda: Buckets(LATENCY_BUCKETS_S))
    latencies: list[float] = field(default_factory=list)  # seconds, drained by the sampler


class Hub:
    def __init__(
        self,
        *,
        heartbeat_s: float,
        retry_ms: int,
        sensitive: SensitiveLookup = _no_sensitive,
    ) -> None:
        # No defaults for what Settings configures: one place for each default.
        self.index: SubscriptionIndex[BaseStream] = SubscriptionIndex()
        self.position = 0
        self.stats = HubStats()
        self._sensitive = sensitive
        self._by_user: dict[tuple[str, str], set[BaseStream]] = {}
        self._per_tenant: dict[str, int] = {}
        self._heartbeat_s = heartbeat_s
        self.retry_ms = retry_ms
        self._supervisor: Supervisor | None = None

    # -- streams ----------------------------------------------------------

    def __len__(self) -> int:
        return len(self.index)

    def connections_of(self, tenant_id: str) -> int:
        return self._per_tenant.get(tenant_id, 0)

    def per_tenant(self) -> dict[str, int]:
        """Open streams per tenant (``*``: platform viewers), a copy."""
        return dict(self._per_tenant)

    def connections_of_user(self, tenant_id: str, user_id: str) -> int:
        return len(self._by_user.get((tenant_id, user_id), ()))

    def attach(self, stream: BaseStream) -> None:
        """Start offering events to ``stream`` (it receives them once ``live``)."""
        self.index.add(stream)
        stream.on_close = self._detach
        if stream.user_key is not None:
            self._by_user.setdefault(stream.user_key, set()).add(stream)
        tenant = stream.viewer.tenant_id or "*"
        self._per_tenant[tenant] = self._per_tenant.get(tenant, 0) + 1
        self.stats.opened += 1
        opened = self.stats.opened_by
        opened[stream.kind] = opened.get(stream.kind, 0) + 1

    def _detach(self, stream: BaseStream) -> None:
        if stream not in self.index._keys:
            return
        self.index.remove(stream)
        if stream.user_key is not None:
            streams = self._by_user.get(stream.user_key)
            if streams is not None:
                streams.discard(stream)
                if not streams:
                    del self._by_user[stream.user_key]
        tenant = stream.viewer.tenant_id or "*"
        self._per_tenant[tenant] -= 1
        if not self._per_tenant[tenant]:
            del self._per_tenant[tenant]
        self.stats.closed += 1
        closed = self.stats.closed_by
        closed[stream.kind] = closed.get(stream.kind, 0) + 1
        if stream.close_reason is not None and stream.close_reason.reason == "slow_consumer":
            self.stats.slow_disconnects += 1

    def detach(self, stream: BaseStream) -> None:
        """The client went away: forget the stream."""
        stream.closed = True
        stream.live = False
        self._detach(stream)

    def streams_of_user(self, tenant_id: str, user_id: str) -> list[BaseStream]:
        return list(self._by_user.get((tenant_id, user_id), ()))

    def close_user(self, tenant_id: str, user_id: str, reason: CloseReason) -> int:
        streams = self.streams_of_user(tenant_id, user_id)
        for stream in streams:
            stream.close(reason)
        return len(streams)

    def close_key(self, key_id: str, reason: CloseReason) -> int:
        """Close the streams opened with API key ``key_id`` (revoked)."""
        streams = [s for s in self.index if s.key_id == key_id]
        for stream in streams:
            stream.close(reason)
        return len(streams)

    def close_tenant(self, tenant_id: str, reason: CloseReason) -> int:
        streams = [s for s in self.index if s.viewer.tenant_id == tenant_id]
        for stream in streams:
            stream.close(reason)
        return len(streams)

    def update_viewer(self, stream: BaseStream, viewer: Viewer) -> None:
        """Permissions changed: the open stream follows at once."""
        stream.viewer = viewer
        self.index.reindex(stream)

    # -- dispatch ---------------------------------------------------------

    def frames_for(self, event: Event) -> FrameSource:
        """The event's frames: one shared :class:`Frame` when the event
        carries none of its type's sensitive fields, else an encoder
        building each redaction variant once (keyed by the viewer's
        permission set, whose hash Python caches)."""
        sensitive = self._sensitive(event.tenant_id, event.type)
        wire = event.to_wire() if sensitive else {}
        sensitive = carried(wire, sensitive)
        if not sensitive:  # nothing any viewer must not see: one encoding for all
            return Frame(event.position, event.to_json())
        by_permissions: dict[frozenset[str], Frame] = {}
        by_variant: dict[Variant, Frame] = {}

        def frame(viewer: Viewer) -> Frame:
            found = by_permissions.get(viewer.permissions)
            if found is None:
                variant = variant_for(viewer, sensitive)
                found = by_variant.get(variant)
                if found is None:
                    found = Frame(event.position, orjson.dumps(redact(wire, sensitive, variant)))
                    by_variant[variant] = found
                by_permissions[viewer.permissions] = found
            return found

        return frame

    def frame_for(self, event: Event, viewer: Viewer) -> Frame:
        source = self.frames_for(event)
        return source if isinstance(source, Frame) else source(viewer)

    def dispatch(self, events: Iterable[Event], committed_at: float | None = None) -> None:
        """Hand committed events to the live streams. Never raises (see the
        module docstring); a try block costs nothing until it catches."""
        batch = list(events)
        try:
            if len(batch) == 1:
                delivered = self._dispatch_one(batch[0])
            else:
                delivered = self._dispatch_coalesced(batch)
        except Exception:  # a bug past the per-event guards: still move on
            self.report_failure(batch[0] if batch else None, len(batch))
            delivered = 0
        if batch:
            self.position = batch[-1].position
        self.stats.delivered += delivered
        self.stats.dispatched_events += len(batch)
        if committed_at is not None and batch:
            seconds = time.time() - committed_at
            self.stats.latency.observe(seconds)
            sampled = self.stats.latencies
            sampled.append(seconds)
            if len(sampled) > MAX_SAMPLED:
                del sampled[: MAX_SAMPLED // 2]

    def _dispatch_one(self, event: Event) -> int:
        """The hot path: one event, one write per matching live stream."""
        streams = self.index.matching(event.tenant_id, event.audiences)
        if not streams:
            return 0
        event_type = event.type
        delivered = 0
        try:
            source = self.frames_for(event)
            shared = source if isinstance(source, Frame) else None
            for stream in streams:
                if not stream.live or (
                    stream.types is not None and not stream.types.matches(event_type)
                ):
                    continue
                stream.deliver(shared or source(stream.viewer))  # type: ignore[operator]
                delivered += 1
        except Exception:
            self.report_failure(event)
        return delivered

    def _dispatch_coalesced(self, batch: list[Event]) -> int:
        """Several events committed together: one write per stream."""
        pending: dict[BaseStream, list[Frame]] = {}
        delivered = 0
        # Events of a batch mostly share their tenant and audiences.
        matched: dict[tuple[str, tuple[str, ...]], Collection[BaseStream]] = {}
        for event in batch:
            scope = (event.tenant_id, event.audiences)
            streams = matched.get(scope)
            if streams is None:
                streams = matched[scope] = self.index.matching(*scope)
            if not streams:
                continue
            try:
                source = self.frames_for(event)
                shared = source if isinstance(source, Frame) else None
                for stream in streams:
                    if not stream.live or (
                        stream.types is not None and not stream.types.matches(event.type)
                    ):
                        continue
                    frame = shared or source(stream.viewer)  # type: ignore[operator]
                    found = pending.get(stream)
                    if found is None:
                        pending[stream] = [frame]
                    else:
                        found.append(frame)
                    delivered += 1
            except Exception:
                self.report_failure(event)
        for stream, frames in pending.items():
            if stream.live:
                if len(frames) == 1:
                    stream.deliver(frames[0])
                else:
                    stream.deliver_many(frames)
        return delivered

    def report_failure(self, event: Event | None, count: int = 1) -> None:
        """One log line and one count per event that could not be handed over."""
        self.stats.dispatch_errors += count
        if event is None:
            return
        log.exception(
            "event at position %d (%s, tenant %s) could not be delivered live; it stays in the log",
            event.position,
            event.type,
            event.tenant_id,
        )

    # -- lifecycle --------------------------------------------------------

    def start(self, supervisor: Supervisor | None = None) -> None:
        """Start the heartbeat, supervised (``hub.heartbeat``)."""
        if self._supervisor is None:
            self._supervisor = supervisor or Supervisor()
            self._supervisor.spawn(HEARTBEAT_TASK, self._beat)

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self._heartbeat_s)
            for stream in list(self.index):
                if stream.live:
                    try:
                        stream.heartbeat()
                    except Exception:  # one broken connection: close it, beat the rest
                        log.exception("heartbeat failed; closing the stream")
                        self.detach(stream)

    def close_all(self, reason: CloseReason = SHUTDOWN) -> None:
        """Graceful shutdown: every client is told to come back, with jitter."""
        for stream in list(self.index):
            stream.close(reason, retry_ms=jittered_retry_ms(self.retry_ms))

    async def stop(self) -> None:
        if self._supervisor is not None:
            await self._supervisor.stop(HEARTBEAT_TASK)
            self._supervisor = None
        self.close_all()


__all__ = ["CloseReason", "Hub"]
