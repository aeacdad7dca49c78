"""SSE framing: round trips, and no field injection through ids or data."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tidings.core.sse import SSEParser, encode_event, encode_message


def parse(stream: str, chunk: int = 7) -> list:
    parser = SSEParser()
    out = []
    for i in range(0, len(stream), chunk):
        out.extend(parser.feed(stream[i : i + chunk]))
    return out


@given(data=st.text(), ident=st.text(max_size=20), chunk=st.integers(1, 50))
def test_any_data_and_id_round_trip_as_one_message(data: str, ident: str, chunk: int) -> None:
    frame = encode_message(data, id=ident).decode()
    messages = parse(frame, chunk)
    assert len(messages) == 1
    expected = data.replace("\r\n", "\n").replace("\r", "\n").replace("\0", "\ufffd")
    assert messages[0].data == expected
    # CR, LF and NUL never reach the id line
    clean = ident.replace("\r", "").replace("\n", "").replace("\0", "")
    assert messages[0].id == clean


def test_injection_attempts_stay_inside_their_field() -> None:
    frame = encode_message(
        "x\n\nid: 999\ndata: evil", id="1\nevent: admin", event="e\rretry: 1"
    ).decode()
    (message,) = parse(frame)
    assert message.id == "1event: admin"
    assert message.event == "eretry: 1"
    assert message.retry is None
    assert message.data == "x\n\nid: 999\ndata: evil"


def test_event_frames_carry_the_position_as_id() -> None:
    (message,) = parse(encode_event(42, b'{"type":"a"}').decode())
    assert message.id == "42" and message.data == '{"type":"a"}'


def test_comments_and_retry_are_understood() -> None:
    messages = parse(": heartbeat\n\nretry: 1500\n\nid: 3\ndata: a\r\ndata: b\r\n\r\n", chunk=3)
    assert [m.event for m in messages] == ["retry", "message"]
    assert messages[0].retry == 1500
    assert messages[1].data == "a\nb" and messages[1].id == "3"
