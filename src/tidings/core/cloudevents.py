"""CloudEvents 1.0 <-> the Tidings envelope: the one mapping (pure, no I/O).

The wire format is the ``cloudevents`` SDK's (``cloudevents.core``: its
JSON format and HTTP binding parse and write every byte); what this module
owns is the table between the two envelopes (docs/CLOUDEVENTS.md):

==================  =====================================================
Tidings             CloudEvent
==================  =====================================================
``id``              ``id`` (the producer id: publishing is idempotent on it)
``type``            ``type``
``tenantId``        ``tenantid`` (extension); egress ``source`` is
                    ``/tenants/<tenantId>``, and on ingest such a source
                    names the tenant when ``tenantid`` is absent
``entityId``        ``subject``
``entityType``      ``entitytype`` (extension)
``action``          ``action`` (extension)
``timestamp``       ``time`` (the same instant; see :func:`timestamp_text`)
``data``            ``data`` (a JSON object; ``datacontenttype`` is JSON)
``schema``          ``dataschema`` as ``urn:tidings:schema:<schema>``
``audiences``       ``audiences`` (extension): comma-separated, in order
``actor``           ``actor`` (extension): the object as JSON text
``metadata``        ``metadata`` (extension): the object as JSON text
``position``        ``position`` (extension, egress only: an integer)
==================  =====================================================

CloudEvents extension values are strings (or integers, booleans, URIs):
lists and objects are therefore encoded, audiences as a comma-separated
list (an audience never holds a comma, see ``core/audience.py``), actor and
metadata as JSON text. Absent members are left out (no subject, no actor,
``metadata`` ``{}``).

Guarantees: native -> CloudEvent -> native is the identity on every mapped
member of a stored event (property-tested); an attribute this table does
not know is refused by name, never dropped silently.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from typing import Any, Final

import orjson
from cloudevents.core.base import BaseCloudEvent
from cloudevents.core.bindings.http import HTTPMessage, from_binary, to_binary, to_structured
from cloudevents.core.exceptions import BaseCloudEventException, CloudEventValidationError
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from tidings.errors import InvalidInput, MalformedJSON, PayloadTooLarge

STRUCTURED: Final = "application/cloudevents+json"
BATCH: Final = "application/cloudevents-batch+json"
DATA_CONTENT_TYPE: Final = "application/json"
SPECVERSION: Final = "1.0"
SOURCE_PREFIX: Final = "/tenants/"
SCHEMA_PREFIX: Final = "urn:tidings:schema:"
FORMAT: Final = JSONFormat()
REQUIRED: Final = ("specversion", "id", "source", "type")
_JSON_TYPE = re.compile(r"^(application|text)/([A-Za-z0-9\-.]+\+)?json$")
_SOURCE_TENANT = re.compile(r"^/tenants/([A-Za-z0-9_.\-]{1,64})$")

# native member -> CloudEvents attribute, for naming a field in an error
NATIVE_TO_CE: Final = {
    "id": "id",
    "type": "type",
    "tenantId": "tenantid",
    "entityId": "subject",
    "entityType": "entitytype",
    "action": "action",
    "timestamp": "time",
    "data": "data",
    "schema": "dataschema",
    "audiences": "audiences",
    "actor": "actor",
    "metadata": "metadata",
}
EXTENSIONS: Final = frozenset(
    {"tenantid", "entitytype", "action", "audiences", "actor", "metadata"}
)
KNOWN: Final = frozenset(
    {*REQUIRED, "subject", "time", "datacontenttype", "dataschema", *EXTENSIONS}
)


# -- egress: the stored envelope -> a CloudEvent --------------------------------


def to_cloudevent(wire: Mapping[str, Any]) -> CloudEvent:
    """The CloudEvent of an envelope in its wire form (``Event.to_wire()``,
    or a redacted copy of it): every member the table maps."""
    attributes: dict[str, Any] = {
        "specversion": SPECVERSION,
        "id": wire["id"],
        "type": wire["type"],
        "source": SOURCE_PREFIX + wire["tenantId"],
        "time": parse_time(wire["timestamp"]),
        "datacontenttype": DATA_CONTENT_TYPE,
        "tenantid": wire["tenantId"],
        "action": wire["action"],
    }
    optional = {
        "subject": wire.get("entityId"),
        "entitytype": wire.get("entityType"),
        "dataschema": SCHEMA_PREFIX + wire["schema"] if wire.get("schema") else None,
        "audiences": ",".join(wire["audiences"]) if wire.get("audiences") else None,
        "actor": None if wire.get("actor") is None else orjson.dumps(wire["actor"]).decode(),
        "metadata": orjson.dumps(wire["metadata"]).decode() if wire.get("metadata") else None,
        "position": wire.get("position") or None,
    }
    attributes.update((k, v) for k, v in optional.items() if v is not None)
    return CloudEvent(attributes, dict(wire.get("data") or {}))


def structured_json(wire: Mapping[str, Any]) -> bytes:
    """The envelope as one structured-mode CloudEvent (JSON), by the SDK."""
    return to_structured(to_cloudevent(wire), FORMAT).body


def binary_message(wire: Mapping[str, Any]) -> HTTPMessage:
    """The envelope in binary mode: ``ce-*`` headers (and Content-Type)
    plus the data as the body, by the SDK's HTTP binding."""
    return to_binary(to_cloudevent(wire), FORMAT)


def parse_time(text: str) -> datetime:
    """An envelope timestamp (ISO-8601 with a zone, as ingest checked it)
    as an aware datetime; a zone-less one is read as UTC."""
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def timestamp_text(moment: datetime) -> str:
    """A CloudEvent ``time`` as an envelope timestamp: the same instant and
    offset, ``Z`` for UTC, milliseconds (microseconds when it has them).
    The hub's own timestamps (``now_iso``) come back exactly."""
    spec = "milliseconds" if moment.microsecond % 1000 == 0 else "microseconds"
    text = moment.isoformat(timespec=spec)
    return text[:-6] + "Z" if text.endswith("+00:00") else text


# -- ingest: a CloudEvent -> the native envelope ---------------------------------


def read_structured(body: bytes) -> tuple[BaseCloudEvent, frozenset[str]]:
    """One structured-mode CloudEvent from a JSON body (checked to be
    strict JSON first), by the SDK, with the attributes its producer sent.
    Errors name the attribute (``/type``)."""
    sent = _sent(_loads(body), "")
    return _read(body, "", sent), sent


def read_batch(body: bytes, max_batch: int) -> list[tuple[BaseCloudEvent, frozenset[str]]]:
    """The events of a batch-mode body (a JSON array of structured
    CloudEvents), each with the attributes its producer sent."""
    items = _loads(body)
    if not isinstance(items, list) or not items:
        raise InvalidInput("a CloudEvents batch is a JSON array of at least one event", field="")
    if len(items) > max_batch:
        raise PayloadTooLarge(
            f"{len(items)} events in one batch; the limit is {max_batch}", field=""
        )
    events = []
    for i, item in enumerate(items):
        sent = _sent(item, f"/{i}")
        events.append((_read(orjson.dumps(item), f"/{i}", sent), sent))
    return events


def check_binary_headers(headers: Mapping[str, str]) -> None:
    """The required ``ce-*`` headers are there and the data is JSON (before
    the body is read as JSON)."""
    for name in REQUIRED:
        if not headers.get("ce-" + name):
            raise InvalidInput(f"ce-{name} is required", field="ce-" + name)
    content_type = headers.get("content-type")
    if content_type is not None:
        check_data_content_type(content_type, "Content-Type")


def read_binary(headers: Mapping[str, str], body: bytes) -> BaseCloudEvent:
    """One binary-mode CloudEvent: ``headers`` lower-cased, ``body`` the
    data (checked to be strict JSON when present). Errors name the header
    (``ce-type``); see :func:`binary_field`."""
    check_binary_headers(headers)
    try:
        return from_binary(HTTPMessage(dict(headers), body), FORMAT, CloudEvent)
    except CloudEventValidationError as exc:
        name = _first_attribute(exc)
        raise InvalidInput(_message(exc), field="ce-" + name) from None
    except (BaseCloudEventException, ValueError, OverflowError) as exc:  # ce-time unreadable
        raise InvalidInput(f"ce-time is not an RFC 3339 time: {exc}", field="ce-time") from None


def binary_sent(headers: Mapping[str, str]) -> frozenset[str]:
    return frozenset(name[3:] for name in headers if name.startswith("ce-"))


def check_data_content_type(value: str, field: str) -> None:
    kind = value.partition(";")[0].strip().lower()
    if not _JSON_TYPE.fullmatch(kind):
        raise InvalidInput(f"datacontenttype must be JSON (not {value[:80]!r})", field=field)


def to_envelope(event: BaseCloudEvent, sent: Collection[str]) -> dict[str, Any]:
    """The native envelope (decoded JSON, for ``parse_event``) of a parsed
    CloudEvent. ``sent``: the attributes the producer sent (the SDK fills
    in a ``time`` when none was given; then the hub's receive time is
    used, as for a native event). Errors name the CloudEvents attribute
    as a pointer (``/tenantid``)."""
    attributes = event.get_attributes()
    unknown = sorted(attributes.keys() - KNOWN)
    if unknown:
        name = unknown[0]
        raise InvalidInput(f"unknown CloudEvents attribute {name!r}", field=f"/{name}")
    for name in REQUIRED:
        if name not in sent:
            raise InvalidInput(f"{name} is required", field=f"/{name}")
    envelope: dict[str, Any] = {"id": attributes["id"], "type": attributes["type"]}
    tenant = _tenant(attributes)
    if tenant is not None:
        envelope["tenantId"] = tenant
    if "time" in sent:
        envelope["timestamp"] = timestamp_text(attributes["time"])
    if "datacontenttype" in attributes:
        check_data_content_type(attributes["datacontenttype"], "/datacontenttype")
    _copy(attributes, envelope, "subject", "entityId")
    _copy(attributes, envelope, "entitytype", "entityType")
    _copy(attributes, envelope, "action", "action")
    if "dataschema" in attributes:
        envelope["schema"] = _text(attributes, "dataschema").removeprefix(SCHEMA_PREFIX)
    if "audiences" in attributes:
        envelope["audiences"] = _text(attributes, "audiences").split(",")
    for name in ("actor", "metadata"):
        if name in attributes:
            envelope[name] = _json_object(attributes, name)
    data = event.get_data()
    if data is not None:
        if not isinstance(data, dict):
            raise InvalidInput("data must be a JSON object", field="/data")
        envelope["data"] = data
    return envelope


def cloudevent_field(native: str | None, *, batch: bool = False) -> str | None:
    """A native JSON pointer (``/entityId``, ``/data/x``) as the CloudEvents
    attribute it maps to (``/subject``, ``/data/x``); in a ``batch`` the
    pointer starts with the event's index (``/2/tenantId`` -> ``/2/tenantid``)."""
    if not native or not native.startswith("/"):
        return native
    if batch:
        index, sep, rest = native[1:].partition("/")
        return f"/{index}{cloudevent_field(sep + rest)}"
    head, sep, rest = native[1:].partition("/")
    mapped = NATIVE_TO_CE.get(head)
    return native if mapped is None else f"/{mapped}{sep}{rest}"


def binary_field(pointer: str | None) -> str | None:
    """A structured pointer for binary mode: an attribute is its header
    (``ce-type``, ``Content-Type``), a spot in ``data`` a pointer into the body."""
    if not pointer or not pointer.startswith("/"):
        return pointer  # the body itself, or already a header
    head, sep, rest = pointer[1:].partition("/")
    if head == "data":
        return sep + rest
    if head == "datacontenttype":
        return "Content-Type"
    return f"ce-{head}{sep}{rest}"


# -- helpers ------------------------------------------------------------------


def _loads(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedJSON(f"the body is not valid JSON: {exc}", field="") from None


def _read(body: bytes, prefix: str, sent: frozenset[str]) -> BaseCloudEvent:
    if "data_base64" in sent:  # binary data: Tidings data is a JSON object
        raise InvalidInput("data must be a JSON object (not data_base64)", field=f"{prefix}/data")
    try:
        event = FORMAT.read(CloudEvent, body)
    except CloudEventValidationError as exc:
        raise InvalidInput(_message(exc), field=f"{prefix}/{_first_attribute(exc)}") from None
    except (AttributeError, TypeError) as exc:  # not an object, or a member of the wrong type
        detail = "a structured CloudEvent is a JSON object of attributes"
        raise InvalidInput(f"{detail} ({exc})", field=prefix) from None
    except (ValueError, OverflowError) as exc:  # time unreadable
        raise InvalidInput(f"time is not an RFC 3339 time: {exc}", field=f"{prefix}/time") from None
    return event


def _sent(item: Any, prefix: str) -> frozenset[str]:
    if not isinstance(item, dict):
        raise InvalidInput("a structured CloudEvent is a JSON object of attributes", field=prefix)
    return frozenset(item)


def _first_attribute(exc: CloudEventValidationError) -> str:
    return sorted(exc.errors)[0]


def _message(exc: CloudEventValidationError) -> str:
    name = _first_attribute(exc)
    return "; ".join(str(e) for e in exc.errors[name]) or f"invalid {name}"


def _text(attributes: Mapping[str, Any], name: str) -> str:
    value = attributes[name]
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"{name} must be a non-empty string", field=f"/{name}")
    return value


def _copy(attributes: Mapping[str, Any], envelope: dict[str, Any], name: str, member: str) -> None:
    if name in attributes:
        envelope[member] = _text(attributes, name)


def _json_object(attributes: Mapping[str, Any], name: str) -> dict[str, Any]:
    text = _text(attributes, name)
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        raise InvalidInput(f"{name} must be a JSON object written as a string", field=f"/{name}")
    return value


def _tenant(attributes: Mapping[str, Any]) -> str | None:
    """``tenantid``, or the tenant a ``/tenants/<id>`` source names; a
    source naming another tenant than ``tenantid`` is refused."""
    tenant = _text(attributes, "tenantid") if "tenantid" in attributes else None
    match = _SOURCE_TENANT.fullmatch(str(attributes["source"]))
    if match is None:
        return tenant
    if tenant is not None and tenant != match.group(1):
        raise InvalidInput(
            f"source names tenant {match.group(1)!r} but tenantid is {tenant!r}", field="/source"
        )
    return match.group(1)
