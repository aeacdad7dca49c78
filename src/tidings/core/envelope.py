"""The event envelope (seed 000 + DESIGN §1): parsing input, the stored form
and the wire form.

Parsing is strict and names the offending field as a JSON pointer; nothing
here touches a database or the network.

Nesting is bounded: ``data``, ``metadata`` and ``actor`` may each nest at
most ``max_depth`` levels (the member's own object is level 1; default
:data:`DEFAULT_MAX_DEPTH`, never more than :data:`MAX_DEPTH_CEILING`), so
every stored envelope stays far below what the encoders can write (orjson
refuses more than 254 levels, msgspec and ``copy.deepcopy`` run into
Python's recursion limit near 1,000). :func:`depth_error` names the first
too-deep spot; :func:`deep_pointer` finds it in a body no decoder can read.
Reading the log is total: :func:`event_from_row` turns every stored row
into an event that can be encoded and redacted (see its docstring).
"""

from __future__ import annotations

import logging
import re
import time
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
import orjson
from msgspec import Meta

from tidings.core.audience import parse_audiences
from tidings.core.pointers import pointer_token
from tidings.errors import InvalidInput

log = logging.getLogger("tidings.envelope")
DEFAULT_MAX_DEPTH = 32
MAX_DEPTH_CEILING = 200  # the wire adds a level or two; orjson writes at most 254
NESTED_MEMBERS = ("data", "metadata", "actor")  # the envelope members that may nest
UNREADABLE_TYPE = "tidings.unreadable"
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


# -- nesting depth ----------------------------------------------------------


def _too_deep(node: dict[str, Any] | list[Any], left: int) -> list[str] | None:
    """The path (innermost first) to the first container below ``node``
    that is more than ``left`` levels under it, or None. Recursion stops
    at the limit, so it never goes deeper than the limit itself."""
    items = node.items() if type(node) is dict else enumerate(node)
    for key, child in items:
        kind = type(child)
        if kind is dict or kind is list:
            if left == 0:
                return [pointer_token(key)]
            found = _too_deep(child, left - 1)
            if found is not None:
                found.append(pointer_token(key))
                return found
    return None


def depth_error(member: str, value: Any, max_depth: int) -> InvalidInput | None:
    """The error for envelope member ``member`` nesting more than
    ``max_depth`` levels (the member's own container is level 1), naming the
    first container past the limit as a JSON pointer; None when it fits."""
    if type(value) is not dict and type(value) is not list:
        return None
    path = _too_deep(value, max_depth - 1)
    if path is None:
        return None
    pointer = "/" + "/".join([member, *reversed(path)])
    return InvalidInput(f"{member} nests deeper than {max_depth} levels", field=pointer)


def check_depth(draft: EventDraft, max_depth: int) -> None:
    """Refuse a draft whose data, metadata or actor nests too deep (on the
    publish path: an empty member costs nothing, a flat one one pass)."""
    for member, value in (("data", draft.data), ("metadata", draft.metadata)):
        if value:
            error = depth_error(member, value, max_depth)
            if error is not None:
                raise error
    if draft.actor:
        error = depth_error("actor", draft.actor, max_depth)
        if error is not None:
            raise error


def shallow(body: bytes | str, max_depth: int) -> bool:
    """A cheap sufficient bound, in C: a JSON text with at most
    ``max_depth + 1`` brackets (strings included: it only overcounts)
    cannot hold an envelope member nested deeper than ``max_depth``."""
    if isinstance(body, str):
        return body.count("{") + body.count("[") <= max_depth + 1
    return body.count(b"{") + body.count(b"[") <= max_depth + 1


def drafts_fit(body: bytes, drafts: list[EventDraft], max_depth: int) -> bool:
    """The same bound for the drafts decoded from ``body``: each draft holds
    a bracket of its own and one per non-empty data, metadata, actor and
    audiences (its minimum); a member nesting deeper than ``max_depth``
    holds ``max_depth`` more than the one counted. So a body with fewer
    brackets than the drafts' minimum plus ``max_depth`` holds none (a
    batch's own brackets and those inside strings only add to the count)."""
    minimum = sum(
        [
            1 + bool(d.data) + bool(d.metadata) + bool(d.actor) + (d.audiences is not None)
            for d in drafts
        ]
    )
    return body.count(b"{") + body.count(b"[") < minimum + max_depth


_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{},]')
DEEP_SCAN_BYTES = 1 << 20  # bounds the scan's cost (a Python step per token)


def deep_pointer(body: bytes, levels: int, *, scan_bytes: int = DEEP_SCAN_BYTES) -> str:
    """The JSON pointer of the first container ``levels`` deep in a JSON
    text that nests too deep for any decoder (the top value is level 1);
    "" when it is not within the first ``scan_bytes`` bytes."""
    path: list[list[Any]] = []  # per open container: [is_object, key or index]
    for match in _TOKEN.finditer(body, 0, min(len(body), scan_bytes)):
        token = match.group()
        top = path[-1] if path else None
        if token in (b"{", b"["):
            if len(path) + 1 >= levels:
                return "/" + "/".join(pointer_token(frame[1]) for frame in path)
            path.append([token == b"{", None if token == b"{" else 0])
        elif token in (b"}", b"]"):
            if path:
                path.pop()
        elif token == b",":
            if top is not None:
                top[1] = None if top[0] else top[1] + 1
        elif top is not None and top[0] and top[1] is None:
            try:
                top[1] = orjson.loads(token)  # an object key
            except orjson.JSONDecodeError:
                top[1] = token[1:-1].decode(errors="replace")
    return ""


# -- reading the log ------------------------------------------------------------


def event_from_row(position: int, body: str | bytes, max_depth: int) -> Event:
    """The stored event at ``position``. Total: it never raises on what a
    row holds. A member nesting deeper than ``max_depth`` (stored before
    the limit existed) is replaced by ``{"_tidings": "truncated: ..."}``,
    so the event can always be encoded and redacted; a row no decoder can
    read becomes an event of type :data:`UNREADABLE_TYPE` with no
    audiences, which no viewer is ever shown (logged as an error)."""
    try:
        wire = orjson.loads(body)
        event = Event(
            position=position,
            id=wire["id"],
            tenant_id=wire["tenantId"],
            type=wire["type"],
            entity_type=wire.get("entityType"),
            entity_id=wire.get("entityId"),
            action=wire["action"],
            timestamp=wire["timestamp"],
            actor=wire.get("actor"),
            metadata=wire.get("metadata") or {},
            data=wire.get("data") or {},
            audiences=tuple(wire.get("audiences") or ()),
            schema=wire["schema"],
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        _log_once(position, "the event at position %d cannot be read (%s); it is skipped", exc)
        return _unreadable(position)
    if shallow(body, max_depth):
        return event
    return _bounded(event, max_depth)


def _bounded(event: Event, max_depth: int) -> Event:
    changes: dict[str, Any] = {}
    for member in NESTED_MEMBERS:
        if depth_error(member, getattr(event, member), max_depth) is not None:
            changes[member] = {"_tidings": f"truncated: nests deeper than {max_depth} levels"}
    if not changes:
        return event
    where = ", ".join(changes)
    _log_once(
        event.position, "the event at position %d nests too deep in %s: served truncated", where
    )
    return msgspec.structs.replace(event, **changes)


_logged: set[int] = set()  # positions already reported: a row is read again and again


def _log_once(position: int, message: str, detail: object) -> None:
    if position in _logged:
        return
    if len(_logged) > 10_000:
        _logged.clear()
    _logged.add(position)
    log.error(message, position, detail)


def _unreadable(position: int) -> Event:
    return Event(
        id=f"unreadable-{position}",
        type=UNREADABLE_TYPE,
        tenant_id="",
        entity_type=None,
        entity_id=None,
        action="UPDATED",
        timestamp=iso_utc(0),
        actor=None,
        metadata={},
        data={},
        audiences=(),  # deny by default: nobody sees it
        schema="",
        position=position,
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
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        return None  # RecursionError: nested past ~1,000 levels
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
