"""The event envelope (seed 000 + DESIGN §1): parsing input, the stored form
and the wire form.

Parsing is strict and names the offending field as a JSON pointer; nothing
here touches a database or the network.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from msgspec import Meta

from tidings.core.audience import parse_audiences
from tidings.errors import InvalidInput

ACTIONS = frozenset({"CREATED", "UPDATED", "DELETED", "ACKNOWLEDGED", "STATUS_CHANGED", "ASSIGNED"})
_ID_RE = re.compile(r"^[A-Za-z0-9_.:\-]{1,128}$")
_TENANT_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
_TYPE_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-]{0,127}$")
_ACTION_RE = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")
_ACTOR_KEYS = ("userId", "name", "department", "actorType")
ENVELOPE_FIELDS = frozenset(
    {
        "id",
        "type",
        "tenantId",
        "entityType",
        "entityId",
        "action",
        "timestamp",
        "actor",
        "metadata",
        "data",
        "audiences",
        "schema",
    }
)


# Constraints msgspec checks while decoding (see decode_drafts); the same
# rules parse_event applies in Python.
_Text = Annotated[str, Meta(min_length=1, max_length=256)]
_Id = Annotated[str, Meta(pattern=r"^[A-Za-z0-9_.:\-]{1,128}\Z")]
_Action = Annotated[str, Meta(pattern=r"^[A-Z][A-Z0-9_]{0,63}\Z")]


class EventDraft(msgspec.Struct, rename="camel", forbid_unknown_fields=True, gc=False):
    """A parsed, not yet stored event. ``id`` is None when the producer
    gave none (the store assigns ``evt_<ULID>``). Untracked by the
    collector: it holds plain JSON values, never a cycle."""

    type: str
    tenant_id: Annotated[str, Meta(min_length=1)] = ""  # "" only until parsed
    id: _Id | None = None
    entity_type: _Text | None = None
    entity_id: _Text | None = None
    action: _Action | None = None
    timestamp: _Text | None = None
    actor: dict[str, Any] | None = None
    metadata: dict[str, Any] = {}
    data: dict[str, Any] = {}
    audiences: tuple[str, ...] | None = None
    schema: _Text | None = None


class Event(msgspec.Struct, rename="camel", omit_defaults=True, gc=False):
    """An event as stored in the log. Treat as immutable once stored (the
    appender sets ``position`` once, before anyone sees it). A msgspec
    struct: several times cheaper to build and to encode than a dataclass
    plus a dict for orjson, and one is built per published event. Never
    part of a reference cycle, so the collector need not track it."""

    id: str
    type: str
    tenant_id: str
    entity_type: str | None
    entity_id: str | None
    action: str
    timestamp: str
    actor: dict[str, Any] | None
    metadata: dict[str, Any]
    data: dict[str, Any]
    audiences: tuple[str, ...]
    schema: str
    # Its place in commit order: 0 until appended, and then the last key
    # on the wire (the stored body, encoded at 0, leaves it out).
    position: int = 0

    def to_wire(self) -> dict[str, Any]:
        wire = self._body()
        wire["position"] = self.position
        return wire

    def to_json(self) -> bytes:
        """The wire form, encoded (its position set)."""
        return _encode(self)

    def body_json(self) -> str:
        """The stored body: the wire envelope without its position."""
        unplaced = msgspec.structs.replace(self, position=0) if self.position else self
        return _encode(unplaced).decode()

    def _body(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "tenantId": self.tenant_id,
            "entityType": self.entity_type,
            "entityId": self.entity_id,
            "action": self.action,
            "timestamp": self.timestamp,
            "actor": self.actor,
            "metadata": self.metadata,
            "data": self.data,
            "audiences": list(self.audiences),
            "schema": self.schema,
        }


_encode = msgspec.json.Encoder().encode

_now_cache: tuple[int, str] = (-1, "")


def now_iso() -> str:
    """The current UTC time, ISO-8601 with milliseconds (cached per ms)."""
    global _now_cache
    ms = int(time.time() * 1000)
    if ms != _now_cache[0]:
        _now_cache = (ms, iso_utc(ms / 1000))
    return _now_cache[1]


def parse_instant(value: str, field: str) -> float:
    """Epoch seconds from an ISO-8601 date-time (UTC if no offset is given)
    or from epoch seconds."""
    try:
        return float(value)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"{field} must be an ISO-8601 date-time", field=field) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def iso_utc(epoch: float) -> str:
    """Epoch seconds as ISO-8601 UTC with milliseconds and a ``Z``."""
    text = datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def _string(obj: dict[str, Any], key: str, pattern: re.Pattern[str] | None = None) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"{key} must be a non-empty string", field=f"/{key}")
    if pattern is not None and not pattern.fullmatch(value):
        raise InvalidInput(
            f"{key} has invalid characters or length: {value[:80]!r}", field=f"/{key}"
        )
    if len(value) > 256:
        raise InvalidInput(f"{key} is longer than 256 characters", field=f"/{key}")
    return value


def _object(obj: dict[str, Any], key: str) -> dict[str, Any] | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidInput(f"{key} must be a JSON object", field=f"/{key}")
    return value


def _timestamp(obj: dict[str, Any]) -> str | None:
    value = _string(obj, "timestamp")
    if value is not None:
        _check_timestamp(value)
    return value


def _check_timestamp(value: str) -> None:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput("timestamp must be an ISO-8601 date-time", field="/timestamp") from None
    if parsed.tzinfo is None:
        raise InvalidInput("timestamp must carry a time zone (e.g. Z)", field="/timestamp")


def _actor(obj: dict[str, Any]) -> dict[str, Any] | None:
    actor = _object(obj, "actor")
    if actor is not None:
        _check_actor(actor)
    return actor


def _check_actor(actor: dict[str, Any]) -> None:
    for key, value in actor.items():
        if key in _ACTOR_KEYS and value is not None and not isinstance(value, str):
            raise InvalidInput(f"actor.{key} must be a string", field=f"/actor/{key}")


def parse_event(obj: object, *, default_tenant: str | None = None) -> EventDraft:
    """Parse one envelope from decoded JSON. ``default_tenant`` is the tenant
    of a tenant-bound credential; ``tenantId`` may then be omitted."""
    if not isinstance(obj, dict):
        raise InvalidInput("the event must be a JSON object", field="")
    unknown = obj.keys() - ENVELOPE_FIELDS
    if unknown:
        name = sorted(unknown)[0]
        raise InvalidInput(f"unknown envelope field {name!r}", field=f"/{name}")
    event_type = _string(obj, "type", _TYPE_RE)
    if event_type is None:
        raise InvalidInput("type is required", field="/type")
    tenant_id = _string(obj, "tenantId", _TENANT_RE) or default_tenant
    if tenant_id is None:
        raise InvalidInput(
            "tenantId is required for credentials not bound to a tenant", field="/tenantId"
        )
    action = _string(obj, "action", _ACTION_RE)
    audiences = obj.get("audiences")
    return EventDraft(
        type=event_type,
        tenant_id=tenant_id,
        id=_string(obj, "id", _ID_RE),
        entity_type=_string(obj, "entityType"),
        entity_id=_string(obj, "entityId"),
        action=action,
        timestamp=_timestamp(obj),
        actor=_actor(obj),
        metadata=_object(obj, "metadata") or {},
        data=_object(obj, "data") or {},
        audiences=None if audiences is None else parse_audiences(audiences),
        schema=_string(obj, "schema"),
    )


class _Batch(msgspec.Struct):
    events: list[EventDraft]


_decode_one = msgspec.json.Decoder(EventDraft).decode
_decode_batch = msgspec.json.Decoder(_Batch | list[EventDraft]).decode
# msgspec reads integers over 64 bits exactly, orjson (the exact path) as
# floats, and orjson cannot write them back: so that stored events never
# depend on the path, bodies with a run of 19 digits or more (such an
# integer, or a long digit string) take the exact path.
_DIGIT_MARKS = bytes(57 if 48 <= i <= 57 else 32 for i in range(256))  # digits -> "9"
_LONG_DIGITS = b"9" * 19
_good_names: dict[tuple[str, str], bool] = {}  # (kind, value) -> passes; types and tenants repeat


def decode_drafts(
    body: bytes, *, batch: bool, default_tenant: str | None
) -> list[EventDraft] | None:
    """The fast path: the JSON body decoded straight into drafts, with the
    field rules checked by msgspec in C. None when it cannot vouch for the
    body (any rule broken, or JSON it reads differently from orjson): the
    caller then takes :func:`parse_event`, which names the problem exactly.
    It never accepts what parse_event refuses (property-tested)."""
    if _LONG_DIGITS in body.translate(_DIGIT_MARKS):
        return None  # perhaps an integer over 64 bits: read as orjson reads it
    try:
        decoded = _decode_batch(body) if batch else [_decode_one(body)]
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    drafts = decoded.events if isinstance(decoded, _Batch) else decoded
    for draft in drafts:
        if not _finish(draft, default_tenant):
            return None
    return drafts


def _finish(draft: EventDraft, default_tenant: str | None) -> bool:
    """The rules msgspec does not check, on a decoded draft (in place)."""
    if not _good_name("type", draft.type, _TYPE_RE):
        return False
    if draft.tenant_id:
        if not _good_name("tenant", draft.tenant_id, _TENANT_RE):
            return False
    elif default_tenant is None:
        return False
    else:
        draft.tenant_id = default_tenant
    try:
        if draft.timestamp is not None:
            _check_timestamp(draft.timestamp)
        if draft.actor is not None:
            _check_actor(draft.actor)
        if draft.audiences is not None:
            draft.audiences = parse_audiences(draft.audiences)
    except InvalidInput:
        return False
    return True


def _good_name(kind: str, value: str, pattern: re.Pattern[str]) -> bool:
    key = (kind, value)
    good = _good_names.get(key)
    if good is None:
        if len(_good_names) > 10_000:
            _good_names.clear()
        good = _good_names[key] = len(value) <= 256 and pattern.fullmatch(value) is not None
    return good
