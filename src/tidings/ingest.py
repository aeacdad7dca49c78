"""Ingest: raw envelopes -> validated events ready to append.

Steps, each raising a precise :class:`InvalidInput` (with a JSON pointer)
or :class:`Forbidden`: parse the envelope, check the caller may publish to
the tenant, find the type in the catalog, validate ``data`` against the
named schema version, resolve audiences (explicit, or the catalog's
defaults), refuse anything unscoped, assign id and timestamp. Nothing is
stored unless every event of the request passes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from tidings.auth import Principal
from tidings.core.catalog import Catalog, schema_ref
from tidings.core.envelope import Event, now_iso, parse_event
from tidings.core.ids import new_event_id
from tidings.errors import Forbidden, InvalidInput, PayloadTooLarge
from tidings.store.base import NewEvent


class Ingest:
    def __init__(
        self,
        catalog: Callable[[str], Catalog],
        *,
        max_event_bytes: int,
        validate_payloads: bool = True,
    ) -> None:
        self._catalog = catalog  # tenant id -> the catalog that tenant sees
        self.max_event_bytes = max_event_bytes
        self.validate_payloads = validate_payloads

    def prepare(
        self,
        raw: Any,
        principal: Principal,
        *,
        idempotency_key: str | None = None,
        pointer: str = "",
        measured_size: int | None = None,
    ) -> NewEvent:
        try:
            return self._prepare(raw, principal, idempotency_key, measured_size)
        except InvalidInput as exc:
            if pointer:
                exc.field = pointer + (exc.field or "")
            raise

    def _prepare(
        self, raw: Any, principal: Principal, idempotency_key: str | None, measured_size: int | None
    ) -> NewEvent:
        if measured_size is not None and measured_size > self.max_event_bytes:
            raise PayloadTooLarge(
                f"the event is {measured_size} bytes; the limit is {self.max_event_bytes}"
            )
        draft = parse_event(raw, default_tenant=principal.tenant_id)
        if not principal.can_publish_to(draft.tenant_id):
            raise Forbidden(
                f"this credential may not publish to tenant {draft.tenant_id!r}", field="/tenantId"
            )
        catalog = self._catalog(draft.tenant_id)
        event_type = catalog.for_publish(draft.type)
        version = event_type.version_of(draft.schema)
        if self.validate_payloads:
            event_type.validate_data(draft.data, version)
        event_type.check_tenant(draft.data, version, draft.tenant_id)
        action = draft.action or event_type.action or "UPDATED"
        if action not in catalog.allowed_actions(event_type):
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
        event = Event(
            position=0,
            id=draft.id or new_event_id(),
            tenant_id=draft.tenant_id,
            type=draft.type,
            entity_type=draft.entity_type or event_type.entity_type,
            entity_id=draft.entity_id,
            action=action,
            timestamp=draft.timestamp or now_iso(),
            actor=draft.actor,
            metadata=draft.metadata,
            data=draft.data,
            audiences=audiences,
            schema=schema_ref(draft.type, version),
        )
        body = event.body_json()  # serialized once: checked here, stored as is
        if len(body) > self.max_event_bytes:
            raise PayloadTooLarge(
                f"the event is {len(body)} bytes; the limit is {self.max_event_bytes}"
            )
        return NewEvent(
            event=event,
            idempotency_key=idempotency_key,
            created_at=time.time(),
            generated_id=draft.id is None,
            body=body,
        )

    def prepare_batch(self, raws: Sequence[Any], principal: Principal) -> list[NewEvent]:
        return [self.prepare(raw, principal, pointer=f"/events/{i}") for i, raw in enumerate(raws)]
