"""Reading the event log: history pages and the replay that resumes a
stream, both as the reader may see them.

History never fails on a stored row: rows are read in a form that can be
encoded (:func:`tidings.core.envelope.event_from_row`: too-deep members
truncated, unreadable rows shown to nobody), and an item that still cannot
be redacted is left out of its page with a logged error. A page costs
bounded work: at most twenty times ``limit`` rows are scanned, then the
page ends early with a cursor to continue from.

An export (:meth:`History.export`) is those same pages, oldest first, one
after the other: it holds one page at a time whatever the log's size, and
every item carries its ``position``, the point to resume from.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from typing import Any

from tidings.core.audience import Viewer, can_see
from tidings.core.envelope import Event
from tidings.core.patterns import TypeFilter
from tidings.core.redaction import redact, variant_for
from tidings.errors import InvalidInput, NotFound
from tidings.hub.hub import Hub
from tidings.hub.resume import catch_up, tenant_scope
from tidings.hub.stream import BaseStream
from tidings.services.access import authorize
from tidings.services.auth import Principal
from tidings.store.base import LogQuery, Store

log = logging.getLogger("tidings.history")
SCAN_FACTOR = 20  # rows scanned per page, at most, in units of its limit
EXPORT_PAGE = 500  # events an export holds at a time
MAX_ID_TEXT = 200  # characters of the entity-id text filter
TAIL_SHARED_S = 1.0  # a tail's newest page serves every watcher of it this long
MAX_SHARED_TAILS = 64  # distinct (reader, filters) tails kept


@dataclass(frozen=True, slots=True)
class LogRequest:
    """What a history page asks for; ``cursor`` is the position of the
    previous page's last item (None: from the newest, or oldest, on);
    ``entity_id_contains`` keeps the events whose entity id contains that
    text (applied to the scanned rows, so within the page's bounded scan)."""

    types: TypeFilter
    entity_type: str | None = None
    entity_id: str | None = None
    since: float | None = None
    until: float | None = None
    cursor: int | None = None
    limit: int = 100
    newest_first: bool = True
    floor: int | None = None  # newest first: only events after this position
    entity_id_contains: str | None = None

    def __post_init__(self) -> None:
        text = self.entity_id_contains
        if text is not None and len(text) > MAX_ID_TEXT:
            raise InvalidInput(
                f"the entity id text is over {MAX_ID_TEXT} characters", field="entityIdContains"
            )


@dataclass(frozen=True, slots=True)
class HistoryPage:
    items: list[dict[str, Any]]  # wire envelopes, redacted for the reader
    next_cursor: int | None  # None: the log is exhausted


@dataclass(frozen=True, slots=True)
class TailPage:
    items: list[dict[str, Any]]  # wire envelopes, redacted, newest first
    after: int  # the position to ask after next time
    skipped: bool = False  # more events came than one call shows: older ones left out


@dataclass(frozen=True, slots=True)
class _SharedTail:
    at: float  # when it was read (monotonic)
    head: int  # the hub's position read before the query
    page: HistoryPage  # the newest page, no floor


class History:
    """History pages and stream resumption.

    Uses the store's ``EventLog`` role, the ``hub`` (its position and the
    replay into a stream) and ``sensitive`` (a tenant's sensitive fields of
    an event type, :meth:`tidings.catalog.tenants.TenantCatalogs.sensitive`).
    """

    def __init__(
        self,
        store: Store,
        hub: Hub,
        sensitive: Callable[[str, str], Any],
        *,
        max_replay: int,
    ) -> None:
        self._store = store
        self._hub = hub
        self._sensitive = sensitive
        self._max_replay = max_replay
        self._tails: OrderedDict[tuple[Any, ...], _SharedTail] = OrderedDict()

    @staticmethod
    def reader(principal: Principal, tenant_id: str | None) -> Viewer:
        """Who reads (streams and history): a user as stored, or an operator
        of the credential's tenant (or of ``tenant_id``, which must be in
        its scope)."""
        authorize(principal, "events.read", tenant_id, scoped=False)
        if principal.viewer is not None:
            return principal.viewer
        if tenant_id is not None:
            authorize(principal, "events.read", tenant_id, field="tenantId")
        return Viewer.operator(principal.tenant_id or tenant_id)

    async def page(self, viewer: Viewer, request: LogRequest) -> HistoryPage:
        """The next page of events ``viewer`` may see, redacted for it."""
        types = request.types
        exact = [p for p in types.patterns if "*" not in p and "?" not in p]
        prefixes = [
            p[:-1] for p in types.patterns if p.endswith("*") and "*" not in p[:-1] and "?" not in p
        ]
        indexed = len(exact) + len(prefixes) == len(types.patterns)  # else: filtered here
        newest_first, cursor, limit = request.newest_first, request.cursor, request.limit
        query = LogQuery(
            tenant_ids=tenant_scope(viewer),
            types=exact if indexed else (),
            type_prefixes=prefixes if indexed else (),
            entity_type=request.entity_type,
            entity_id=request.entity_id,
            since=request.since,
            until=request.until,
            after=cursor if not newest_first else request.floor,
            before=cursor if newest_first else None,
            limit=limit,
            newest_first=newest_first,
        )
        items: list[dict[str, Any]] = []
        next_cursor: int | None = None
        scanned = 0
        text = request.entity_id_contains or None
        while True:
            rows = await self._store.query_events(query)
            scanned += len(rows)
            for event in rows:
                next_cursor = event.position
                if text is not None and text not in (event.entity_id or ""):
                    continue
                if can_see(viewer, event.tenant_id, event.audiences) and types.matches(event.type):
                    try:
                        items.append(self._visible_wire(event, viewer))
                    except Exception:
                        log.exception("history: event at position %d left out", event.position)
                        continue
                    if len(items) == limit:
                        return HistoryPage(items, next_cursor)
            if len(rows) < query.limit:
                return HistoryPage(items, None)  # the log is exhausted
            if scanned >= limit * SCAN_FACTOR:
                return HistoryPage(items, next_cursor)  # bounded work per request
            query = _advance(query, next_cursor)

    async def export(self, viewer: Viewer, request: LogRequest) -> AsyncIterator[dict[str, Any]]:
        """Every event matching ``request`` that ``viewer`` may see, oldest
        first, after position ``request.cursor`` (None: from the start),
        redacted for it, until the log is exhausted.

        Memory stays flat for any size: pages of :data:`EXPORT_PAGE` events
        are read one at a time (``limit`` and ``newest_first`` of
        ``request`` are ignored). Each item carries its ``position``: to
        resume an interrupted export, ask again with the last one received
        as ``cursor``."""
        wanted = replace(request, newest_first=False, limit=EXPORT_PAGE)
        while True:
            page = await self.page(viewer, wanted)
            for item in page.items:
                yield item
            if page.next_cursor is None:
                return
            wanted = replace(wanted, cursor=page.next_cursor)

    async def event(self, viewer: Viewer, tenant_id: str, event_id: str) -> dict[str, Any]:
        """Event ``event_id`` of ``tenant_id`` as ``viewer`` may see it
        (redacted); :class:`NotFound` when missing or not visible to it
        (its existence is not revealed)."""
        missing = NotFound(f"no event {event_id} in tenant {tenant_id}")
        scope = tenant_scope(viewer)
        if scope is not None and tenant_id not in scope:
            raise missing
        for event in await self._store.events_by_id(tenant_id, [event_id]):
            if can_see(viewer, event.tenant_id, event.audiences):
                return self._visible_wire(event, viewer)
        raise missing

    async def tail(self, viewer: Viewer, request: LogRequest, after: int | None) -> TailPage:
        """A live tail's next rows, newest first: the newest page of
        ``request`` (at most ``request.limit``), and with ``after`` only the
        events after that position.

        Its cost does not grow with the publish rate nor with the number of
        people watching: nothing is read when the hub has nothing after
        ``after``, and the newest page of a (reader, filters) pair is one
        bounded query shared by every watcher for :data:`TAIL_SHARED_S`
        (so a watcher sees a row at most that much later than it could).
        When more came since ``after`` than one call shows, ``skipped``
        says the older ones were left out (the log page and the export have
        them all). The returned ``after`` is the hub's position read before
        the query (everything up to it is committed, so the next call
        starts after what this one could see) or the newest row shown,
        whichever is later."""
        if after is not None and after >= self._hub.position:
            return TailPage([], after)
        shared = await self._newest(viewer, replace(request, cursor=None, floor=None))
        items = shared.page.items
        if after is not None:
            items = [item for item in items if int(item["position"]) > after]
        last = shared.page.next_cursor  # the oldest row scanned, when more are below
        skipped = after is not None and last is not None and last > after + 1
        newest = max((int(item["position"]) for item in items), default=after or 0)
        return TailPage(items, max(shared.head, newest), skipped)

    async def _newest(self, viewer: Viewer, request: LogRequest) -> _SharedTail:
        """The newest page of ``request`` for ``viewer``, read at most once
        per :data:`TAIL_SHARED_S` (or again as soon as the hub moved on
        after it is that old)."""
        key = (viewer, request.types.patterns, *_filters_of(request))
        now = time.monotonic()
        shared = self._tails.get(key)
        fresh = shared is not None and (
            now - shared.at < TAIL_SHARED_S or shared.head == self._hub.position
        )
        if shared is None or not fresh:
            head = self._hub.position
            shared = _SharedTail(now, head, await self.page(viewer, request))
            self._tails[key] = shared
            while len(self._tails) > MAX_SHARED_TAILS:
                self._tails.popitem(last=False)
        self._tails.move_to_end(key)
        return shared

    def _visible_wire(self, event: Event, viewer: Viewer) -> dict[str, Any]:
        sensitive = self._sensitive(event.tenant_id, event.type)
        return redact(event.to_wire(), sensitive, variant_for(viewer, sensitive))

    async def catch_up(self, stream: BaseStream, after: int) -> int:
        """Replay what ``stream`` missed after position ``after`` (at most
        ``max_replay`` events, then a reset); the stream is live when this
        returns (:func:`tidings.hub.resume.catch_up`)."""
        return await catch_up(
            stream, self._hub, self._store, after=after, max_replay=self._max_replay
        )

    async def ping(self) -> None:
        """Return once the log's database answers (else :class:`tidings.errors.Unavailable`)."""
        await self._store.ping()


def _filters_of(request: LogRequest) -> tuple[Any, ...]:
    return (
        request.entity_type,
        request.entity_id,
        request.since,
        request.until,
        request.limit,
        request.entity_id_contains,
        request.newest_first,
    )


def _advance(query: LogQuery, position: int | None) -> LogQuery:
    if query.newest_first:
        return replace(query, before=position)
    return replace(query, after=position)
