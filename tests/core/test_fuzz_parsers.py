"""Hypothesis fuzz of the parsers that face input: the SSE parser (the SDK's
``Subscriber`` and ``tidings tail`` share ``tidings.core.sse.SSEParser``),
stream ids as log positions, envelope decoding, type patterns, condition
paths and inbound webhook signatures.

Each property is bounded (``max_examples``) and derandomized, so CI runs the
same cases every time and a failure reproduces.
"""

from __future__ import annotations

import contextlib
import json
import re
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tidings.catalog import load_catalog
from tidings.core.conditions import compile_path, resolve_path
from tidings.core.envelope import decode_drafts, parse_event
from tidings.core.patterns import TypeFilter
from tidings.core.sse import Message, SSEParser, log_position
from tidings.errors import Forbidden, InvalidInput, Unauthorized
from tidings.sdk.subscriber import Subscriber
from tidings.services.auth import Principal
from tidings.services.inbound import verify_signature
from tidings.services.ingest import Ingest, parse_json

FUZZ = settings(max_examples=200, deadline=None, derandomize=True)
SMALL = settings(max_examples=60, deadline=None, derandomize=True)

# -- SSE: the parser against a whole-stream reference ----------------------------

BOM = "\ufeff"
DIGITS = st.one_of(
    st.integers(0, 10**12).map(str),
    st.sampled_from(["\u00b2", "\uff11\uff12", "\u0663", "1\u00b2", "12 ", " 12", "-1", "1.5"]),
)
VALUES = st.text(st.characters(exclude_characters="\r\n"), max_size=8)
NAMES = st.sampled_from(["data", "id", "event", "retry", "x", "Data", "data ", ""])


@st.composite
def sse_lines(draw: st.DrawFn) -> str:
    """One line of an event stream, without its end."""
    kind = draw(st.sampled_from(["field", "field", "field", "bare", "comment", "empty", "retry"]))
    if kind == "field":
        space = draw(st.sampled_from(["", " ", "  "]))
        return f"{draw(NAMES)}:{space}{draw(VALUES)}"
    if kind == "bare":  # a field name without colon: the whole line, empty value
        return draw(NAMES)
    if kind == "comment":
        return ":" + draw(VALUES)
    if kind == "retry":
        return f"retry:{draw(st.sampled_from(['', ' ']))}{draw(DIGITS)}"
    return ""


@st.composite
def sse_streams(draw: st.DrawFn) -> str:
    lines = draw(st.lists(sse_lines(), max_size=25))
    ends = st.sampled_from(["\n", "\r", "\r\n"])
    text = "".join(line + draw(ends) for line in lines)
    if draw(st.booleans()):
        text += draw(VALUES)  # an unfinished last line
    return (BOM if draw(st.booleans()) else "") + text


def chunked(text: str, cuts: list[int]) -> list[str]:
    points = sorted({min(c, len(text)) for c in cuts})
    return [text[a:b] for a, b in zip([0, *points], [*points, len(text)], strict=True)]


def parse_all(chunks: list[str]) -> tuple[list[Message], str | None]:
    parser = SSEParser()
    messages = [m for chunk in chunks for m in parser.feed(chunk)]
    return messages, parser.last_event_id


def reference(stream: str) -> tuple[list[Message], str | None]:
    """The HTML standard's event-stream interpretation over the whole stream
    at once, plus this parser's retry-only message."""
    stream = stream.removeprefix(BOM)
    *lines, _unfinished = re.split("\r\n|\r|\n", stream)
    data: list[str] = []
    event, last, pending_id, retry = "", None, None, None
    out: list[Message] = []
    for line in lines:
        if line == "":
            last = pending_id if pending_id is not None else last
            if data:
                out.append(Message("\n".join(data), last, event or "message", retry))
            elif retry is not None:
                out.append(Message("", last, "retry", retry))
            data, event, retry = [], "", None
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            data.append(value)
        elif name == "event":
            event = value
        elif name == "id" and "\0" not in value:
            pending_id = value
        elif name == "retry" and re.fullmatch("[0-9]+", value):
            retry = int(value)
    return out, last


@FUZZ
@given(stream=sse_streams(), cuts=st.lists(st.integers(0, 400), max_size=12))
def test_the_sse_parser_reads_any_chunking_as_the_standard_does(
    stream: str, cuts: list[int]
) -> None:
    assert parse_all(chunked(stream, cuts)) == reference(stream)


@FUZZ
@given(text=st.text(), cuts=st.lists(st.integers(0, 200), max_size=8))
def test_the_sse_parser_never_raises(text: str, cuts: list[int]) -> None:
    messages, _ = parse_all(chunked(text, cuts))
    assert all(m.retry is None or m.retry >= 0 for m in messages)


@pytest.mark.parametrize(
    ("stream", "data", "event_id"),
    [
        (BOM + "data: a\n\n", ["a"], None),  # a leading BOM is ignored
        (BOM + BOM + "data: a\n\n", [], None),  # only one: the second makes a field name
        ("data: a\n\n" + BOM + "data: b\n\n", ["a"], None),  # not in the middle
        ("id: 1\rdata: a\r\r", ["a"], "1"),  # CR endings
        ("id: 2\r\ndata: a\r\n\r\n", ["a"], "2"),  # CRLF
        ("data\n\n", [""], None),  # no colon: the name, an empty value
        ("id\ndata: x\n\n", ["x"], ""),  # a bare id resets the id
        ("data: a\n", [], None),  # never dispatched: the stream ended mid-message
    ],
)
def test_sse_edge_cases(stream: str, data: list[str], event_id: str | None) -> None:
    for cut in range(len(stream) + 1):
        messages, _ = parse_all([stream[:cut], stream[cut:]])
        assert [m.data for m in messages] == data, cut
        assert all(m.id == event_id for m in messages)


@pytest.mark.parametrize(
    "value", ["\u00b2", "\uff11\uff12", "\u0663", "1\u00b2", "\u00b9\u00b2\u00b3", "", " 5", "5 "]
)
def test_retry_with_anything_but_ascii_digits_is_ignored(value: str) -> None:
    messages, _ = parse_all([f"retry: {value}\ndata: a\n\nretry: {value}\n\n"])
    assert [(m.data, m.retry) for m in messages] == [("a", None)]


def test_a_crlf_split_across_chunks_is_one_line_end() -> None:
    messages, _ = parse_all(["data: a\r", "\n", "\r", "\ndata: b\r", "\r"])
    assert [m.data for m in messages] == ["a", "b"]
    # and a CR at the end of a chunk dispatches at once: nothing waits for a LF
    parser = SSEParser()
    assert [m.data for m in parser.feed("data: now\r\r")] == ["now"]


# -- stream ids as log positions ---------------------------------------------------


@FUZZ
@given(value=st.one_of(st.text(max_size=12), DIGITS))
def test_a_log_position_is_ascii_digits_only(value: str) -> None:
    position = log_position(value)
    if re.fullmatch("[0-9]+", value):
        assert position == int(value)
    else:
        assert position is None


@pytest.fixture(scope="module")
def subscriber() -> Subscriber:
    # never connects: only its message handling is fuzzed
    return Subscriber("http://127.0.0.1:9", token="t", http=httpx.AsyncClient())


@FUZZ
@given(
    ident=st.one_of(st.none(), DIGITS, st.text(max_size=6)),
    data=st.one_of(
        st.text(max_size=20),
        st.sampled_from(['{"type": "connected"}', '{"type": "reset"}', '{"type": "closed"}']),
        st.dictionaries(st.sampled_from(["type", "position", "reason"]), DIGITS).map(
            lambda d: orjson.dumps(d).decode()
        ),
    ),
    retry=st.one_of(st.none(), st.integers(0, 10**20)),
)
def test_the_sdk_handles_any_message(
    subscriber: Subscriber, ident: str | None, data: str, retry: int | None
) -> None:
    subscriber.closed_reason = None
    event = subscriber._handle(Message(data, ident, "message", retry))
    assert event is None or isinstance(event, dict)
    assert subscriber._position is None or subscriber._position >= 0


@pytest.mark.parametrize("value", ["\u00b2", "\uff11\uff12", "-1", "1.0", "", "abc"])
def test_the_sdk_and_tail_refuse_a_last_event_id_that_is_no_position(value: str) -> None:
    from tidings.cli.tail import run_tail

    with pytest.raises(InvalidInput) as raised:
        Subscriber("http://127.0.0.1:9", last_event_id=value, http=httpx.AsyncClient())
    assert raised.value.field == "last_event_id"
    import asyncio

    with pytest.raises(InvalidInput) as raised:
        asyncio.run(run_tail("http://127.0.0.1:9", "t", last_event_id=value))
    assert raised.value.field == "--last-event-id"


# -- envelope decoding ---------------------------------------------------------------

ENVELOPE = {"type": "qms.car.updated", "tenantId": "t1", "data": {"carId": "c1"}}
JSON_VALUES = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**70), 2**70),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=8),
    ),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=12,
)


def _dumps(value: Any) -> bytes:
    return json.dumps(value).encode()  # orjson cannot write integers past 64 bits


@st.composite
def json_ish(draw: st.DrawFn) -> bytes:
    """Bytes near JSON: encoded values and envelopes, then cut, spliced with
    junk, wrapped in BOM or deep nesting, or given tokens JSON lacks."""
    base = draw(
        st.one_of(
            JSON_VALUES.map(_dumps),
            st.fixed_dictionaries({}, optional={k: JSON_VALUES for k in ENVELOPE})
            .map(lambda d: {**ENVELOPE, **d})
            .map(_dumps),
            st.sampled_from([b"NaN", b"Infinity", b"-Infinity", b'"\\ud800"', b"1e999"]),
        )
    )
    how = draw(st.sampled_from(["as is", "cut", "splice", "bom", "deep", "batch"]))
    if how == "cut":
        return base[: draw(st.integers(0, len(base)))]
    if how == "splice":
        at = draw(st.integers(0, len(base)))
        return base[:at] + draw(st.binary(max_size=6)) + base[at:]
    if how == "bom":
        return b"\xef\xbb\xbf" + base
    if how == "deep":
        depth = draw(st.integers(1, 600))
        return b'{"type": "x", "tenantId": "t1", "data": ' + b"[" * depth + b"]" * depth + b"}"
    return b'{"events": [' + base + b"]}"


@pytest.fixture(scope="module")
def ingest() -> Ingest:
    catalog = load_catalog()
    return Ingest(lambda _tenant: catalog, max_event_bytes=65536)


OPERATOR = Principal(kind="admin", scopes=frozenset({"admin", "publish"}))
BOUND = Principal(kind="api_key", scopes=frozenset({"publish"}), tenant_id="t2")


@FUZZ
@given(body=json_ish(), batch=st.booleans(), default=st.sampled_from([None, "t1"]))
def test_envelope_decoding_raises_nothing_but_invalid_input(
    body: bytes, batch: bool, default: str | None
) -> None:
    drafts = decode_drafts(body, batch=batch, default_tenant=default)  # never raises
    assert drafts is None or isinstance(drafts, list)
    with contextlib.suppress(InvalidInput):
        parse_event(parse_json(body), default_tenant=default)


@FUZZ
@given(body=json_ish(), batch=st.booleans(), bound=st.booleans())
def test_publish_bodies_raise_nothing_but_input_and_permission_errors(
    ingest: Ingest, body: bytes, batch: bool, bound: bool
) -> None:
    principal = BOUND if bound else OPERATOR
    try:
        ingest.prepare_body(body, principal, batch=batch, max_batch=10)
    except (InvalidInput, Forbidden) as error:
        assert 400 <= error.status < 500


# -- type patterns and condition paths -----------------------------------------------

PATTERN_CHARS = st.sampled_from([*"ab.*?_-", "\u00e9", " ", ",", "\n", "["])


@SMALL
@given(
    text=st.one_of(st.text(PATTERN_CHARS, max_size=24), st.text(max_size=24)),
    types=st.lists(st.text(st.sampled_from(list("ab._-")), max_size=16), max_size=4),
)
def test_type_patterns_compile_or_raise_invalid_input(text: str, types: list[str]) -> None:
    try:
        type_filter = TypeFilter.parse(text)
    except InvalidInput as error:
        assert error.field == "types"
        return
    for event_type in types:
        assert isinstance(type_filter.matches(event_type), bool)
    for pattern in type_filter.patterns:
        if "*" not in pattern and "?" not in pattern:
            assert type_filter.matches(pattern)  # an exact name matches itself


SEGMENT_CHARS = st.sampled_from([*"aZ09_-$.", "\u00b2", "\u0663", " ", "[", "\n"])


@FUZZ
@given(
    path=st.one_of(st.text(SEGMENT_CHARS, max_size=20), st.text(max_size=20), JSON_VALUES),
    envelope=st.dictionaries(st.sampled_from(["data", "a", "0"]), JSON_VALUES, max_size=3),
)
def test_condition_paths_compile_or_raise_invalid_input(path: Any, envelope: Any) -> None:
    try:
        compiled = compile_path(path)
    except InvalidInput as error:
        assert error.field == "/path"
        return
    assert ".".join(key for key, _ in compiled) == path
    for key, index in compiled:  # only canonical ASCII digits index a list
        assert (index is not None) == bool(re.fullmatch("0|[1-9][0-9]*", key))
    found, _value = resolve_path(envelope, compiled)
    assert isinstance(found, bool)


# -- inbound webhook signatures ------------------------------------------------------

HEADER_NAMES = [
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "x-timestamp",
    "x-signature",
    "x-webhook-id",
]
HEADER_VALUES = st.one_of(
    DIGITS, st.text(st.characters(max_codepoint=255), max_size=12), st.just("v1,AAAA")
)


@FUZZ
@given(
    scheme=st.sampled_from(["standard-webhooks", "hmac-sha256"]),
    headers=st.dictionaries(st.sampled_from(HEADER_NAMES), HEADER_VALUES, max_size=6),
    body=st.binary(max_size=20),
)
def test_signature_checks_raise_nothing_but_unauthorized(
    scheme: str, headers: dict[str, str], body: bytes
) -> None:
    integration = {"scheme": scheme, "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
    with pytest.raises(Unauthorized):
        verify_signature(integration, body, headers)
