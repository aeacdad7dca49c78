"""Ingest: raw envelopes -> validated events ready to append.

Steps, each raising a precise :class:`InvalidInput` (with a JSON pointer)
or :class:`Forbidden`: parse the envelope, check the caller may publish to
the tenant, find the type in the catalog, validate ``data`` against the
named schema version, resolve audiences (explicit, or the catalog's
defaults), refuse anything unscoped, assign id and timestamp. Nothing is
stored unless every event of the request passes.

Request bodies are decoded by msgspec straight into drafts when it can
vouch for them (``decode_drafts``: about 3x cheaper than orjson plus
Python checks per event); anything else takes the exact path, which names
the offending field.

Nesting is refused before anything else looks into a payload: ``data``,
``metadata`` and ``actor`` nest at most ``max_depth`` levels (422 naming the
first too-deep spot), whichever path a body takes, however deep it is (past
what msgspec and orjson can decode, the spot is found by a bounded scan of
the raw body). A body with few enough brackets for its events is known to
fit without a look at their values (``drafts_fit``: two ``bytes.count``
calls in C and a sum over the drafts); any other body costs one walk over
each event's containers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

import orjson

from tidings.core.catalog import Catalog, EventType
from tidings.core.envelope import (
    DEFAULT_MAX_DEPTH,
    MAX_DEPTH_CEILING,
    Event,
    EventDraft,
    check_depth,
    decode_drafts,
    deep_pointer,
    drafts_fit,
    now_iso,
    parse_event,
    shallow,
)
from tidings.core.ids import new_event_id, new_event_ids
from tidings.errors import Forbidden, InvalidInput, MalformedJSON, PayloadTooLarge
from tidings.services.auth import Principal
from tidings.store.base import NewEvent


class Kind(NamedTuple):
    """What an event's tenant, type and schema decide."""

    event_type: EventType
    version: int
    schema: str  # the schema reference stored with the event


class Received(NamedTuple):
    """When the hub received a request: the default timestamp of its
    events, and the time their rows record."""

    timestamp: str
    at: float

    @classmethod
    def now(cls) -> Received:
        return cls(now_iso(), time.time())


class Ingest:
    def __init__(
        self,
        catalog: Callable[[str], Catalog],
        *,
        max_event_bytes: int,
        validate_payloads: bool = True,
        max_depth: int = DEFAULT_MAX_DEPTH,
    ) -> None:
        if not 1 <= max_depth <= MAX_DEPTH_CEILING:
            raise InvalidInput(
                f"max_event_depth must be from 1 to {MAX_DEPTH_CEILING}", field="max_event_depth"
            )
        self._catalog = catalog  # tenant id -> the catalog that tenant sees
        self.max_event_bytes = max_event_bytes
        self.validate_payloads = validate_payloads
        self.max_depth = max_depth

    def prepare_body(
        self,
        body: bytes,
        principal: Principal,
        *,
        batch: bool,
        max_batch: int = 0,
        idempotency_key: str | None = None,
    ) -> list[NewEvent]:
        """Events from a request body: one envelope, or ``{"events": [...]}``
        (or a bare list) for a batch of at most ``max_batch``. Tries the fast
        decoder first; whatever it cannot vouch for goes the exact way, so
        errors read the same either way."""
        if not batch and len(body) > self.max_event_bytes:
            raise PayloadTooLarge(
                f"the event is {len(body)} bytes; the limit is {self.max_event_bytes}"
            )
        drafts = decode_drafts(body, batch=batch, default_tenant=principal.tenant_id)
        if drafts is not None and (not batch or 0 < len(drafts) <= max_batch):
            depth = self.max_depth
            fits = drafts_fit(body, drafts, depth) if batch else shallow(body, depth)
            return self._build_all(drafts, principal, idempotency_key, batch, fits)
        raw = self._parse(body, batch)
        if not batch:
            return [self.prepare(raw, principal, idempotency_key=idempotency_key)]
        events = raw.get("events") if isinstance(raw, dict) else raw
        if not isinstance(events, list) or not events:
            raise InvalidInput(
                'the body must be {"events": [ ... ]} with at least one event', field="/events"
            )
        if len(events) > max_batch:
            raise PayloadTooLarge(
                f"{len(events)} events in one batch; the limit is {max_batch}", field="/events"
            )
        return self.prepare_batch(events, principal)

    def _build_all(
        self,
        drafts: list[EventDraft],
        principal: Principal,
        idempotency_key: str | None,
        batch: bool,
        fits: bool,
    ) -> list[NewEvent]:
        ids = iter(new_event_ids(sum(d.id is None for d in drafts)))
        received = Received.now()  # one instant for the whole batch
        kinds: dict[tuple[str, str, str | None], Kind] = {}  # events of a batch share a few
        built = []
        for i, draft in enumerate(drafts):
            try:
                key = (draft.tenant_id, draft.type, draft.schema)
                kind = kinds.get(key)
                if kind is None:
                    kind = kinds[key] = self._kind(draft, principal)
                built.append(self._build(draft, kind, idempotency_key, ids, received, fits))
            except InvalidInput as exc:
                if batch:
                    exc.field = f"/events/{i}" + (exc.field or "")
                raise
        return built

    def prepare(
        self,
        raw: Any,
        principal: Principal,
        *,
        idempotency_key: str | None = None,
        pointer: str = "",
    ) -> NewEvent:
        """One event from decoded JSON (the exact path)."""
        try:
            draft = parse_event(raw, default_tenant=principal.tenant_id)
            return self._build(draft, self._kind(draft, principal), idempotency_key, None)
        except InvalidInput as exc:
            if pointer:
                exc.field = pointer + (exc.field or "")
            raise

    def _kind(self, draft: EventDraft, principal: Principal) -> Kind:
        """What the draft's tenant, type and schema decide (the same for
        every event that shares them)."""
        if not principal.can_publish_to(draft.tenant_id):
            raise Forbidden(
                f"this credential may not publish to tenant {draft.tenant_id!r}", field="/tenantId"
            )
        event_type = self._catalog(draft.tenant_id).for_publish(draft.type)
        version = event_type.version_of(draft.schema)
        return Kind(event_type, version, event_type.ref(version))

    def _build(
        self,
        draft: EventDraft,
        kind: Kind,
        idempotency_key: str | None,
        ids: Iterator[str] | None,
        received: Received | None = None,
        fits: bool = False,
    ) -> NewEvent:
        """``fits``: the body is known to nest shallow enough (:func:`shallow`)."""
        event_type, version, schema = kind
        if not fits:  # before validation, which recurses into the payload
            check_depth(draft, self.max_depth)
        if self.validate_payloads:
            event_type.validate_data(draft.data, version)
        event_type.check_tenant(draft.data, version, draft.tenant_id)
        action = draft.action or event_type.action or "UPDATED"
        if action not in event_type.allowed_actions:
            raise InvalidInput(f"unknown action {action!r}", field="/action")
        audiences = (
            draft.audiences if draft.audiences is not None else event_type.resolve_audiences(draft)
        )
        if not audiences:
            raise InvalidInput(
                f"the event has no audiences and the catalog gives none for {draft.type!r}: "
                "unscoped events are never delivered",
                field="/audiences",
            )
        if received is None:
            received = Received.now()
        event = Event(
            id=draft.id or (next(ids) if ids is not None else new_event_id()),
            tenant_id=draft.tenant_id,
            type=draft.type,
            entity_type=draft.entity_type or event_type.entity_type,
            entity_id=draft.entity_id,
            action=action,
            timestamp=draft.timestamp or received.timestamp,
            actor=draft.actor,
            metadata=draft.metadata,
            data=draft.data,
            audiences=audiences,
            schema=schema,
        )
        body = event.body_json()  # serialized once: checked here, stored as is
        if len(body) > self.max_event_bytes:
            raise PayloadTooLarge(
                f"the event is {len(body)} bytes; the limit is {self.max_event_bytes}"
            )
        return NewEvent(event, idempotency_key, received.at, draft.id is None, body)

    def _parse(self, body: bytes, batch: bool) -> Any:
        """The exact path's decoding: orjson, or for a body nesting past
        what it reads (1,024 levels), the depth problem at the first spot
        past the limit."""
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            if "depth" not in str(exc):
                raise MalformedJSON(f"the body is not valid JSON: {exc}", field="") from None
        if not batch:  # the envelope is level 1, its members level 2
            field = deep_pointer(body, self.max_depth + 2)
        elif body.lstrip()[:1] == b"[":  # a bare list of envelopes
            field = deep_pointer(body, self.max_depth + 3)
            field = "/events" + field if field else field
        else:
            field = deep_pointer(body, self.max_depth + 4)
        raise InvalidInput(f"the body nests deeper than {self.max_depth} levels", field=field)

    def prepare_batch(self, raws: Sequence[Any], principal: Principal) -> list[NewEvent]:
        return [self.prepare(raw, principal, pointer=f"/events/{i}") for i, raw in enumerate(raws)]


def parse_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedJSON(f"the body is not valid JSON: {exc}", field="") from None
