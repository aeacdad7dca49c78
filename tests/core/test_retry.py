"""Retry schedules (pure): the default Svix schedule, exponential specs,
jitter bounds, the Retry-After floor and cap, dead after the last attempt,
validation pointers and Retry-After header parsing."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tidings.core.retry import (
    DEFAULT_SCHEDULE,
    MAX_RETRY_AFTER,
    RetryPolicy,
    parse_retry,
    parse_retry_after,
)
from tidings.errors import InvalidInput


def test_the_default_schedule_is_svix() -> None:
    policy = parse_retry(None)
    assert policy.delays == DEFAULT_SCHEDULE == (0, 5, 300, 1800, 7200, 18000, 36000, 36000)
    assert policy.jitter == 0.1 and policy.max_attempts == 8
    assert policy.first_delay() == 0
    # rand 0.5 is the un-jittered middle of the range.
    assert [policy.next_delay(n) for n in range(1, 9)] == [*DEFAULT_SCHEDULE[1:], None]
    assert parse_retry({}) == policy
    assert parse_retry({"jitter": 0}) == RetryPolicy(DEFAULT_SCHEDULE, 0)


def test_dead_after_the_last_attempt() -> None:
    policy = parse_retry({"schedule": [0, 10]})
    assert policy.max_attempts == 2
    assert policy.next_delay(1) == 10
    assert policy.next_delay(2) is None
    assert policy.next_delay(3, retry_after=5) is None
    single = parse_retry({"schedule": [30]})
    assert single.first_delay() == 30 and single.next_delay(1) is None
    with pytest.raises(ValueError):
        policy.next_delay(0)


def test_exponential_expansion() -> None:
    policy = parse_retry({"attempts": 6, "initial": 10, "factor": 3, "maxDelay": 200})
    assert policy.delays == (0, 10, 30, 90, 200, 200)
    assert parse_retry({"attempts": 4, "initial": 1.5}).delays == (0, 1.5, 3, 6)
    assert parse_retry({"attempts": 1, "initial": 5}).delays == (0,)
    assert parse_retry({"attempts": 3.0, "initial": 5, "factor": 1}).delays == (0, 5, 5)
    assert parse_retry({"attempts": 3, "initial": 500, "maxDelay": 100}).delays == (0, 100, 100)
    long = parse_retry({"attempts": 50, "initial": 1, "factor": 1000, "jitter": 0})
    assert long.delays[-1] == 86400 and long.jitter == 0 and len(long.delays) == 50


def test_to_json_round_trips() -> None:
    for spec in (
        None,
        {"schedule": [0, 1.5, 60], "jitter": 0.25},
        {"attempts": 5, "initial": 2, "factor": 2.5, "maxDelay": 100},
    ):
        policy = parse_retry(spec)
        assert parse_retry(policy.to_json()) == policy
    assert parse_retry(None).to_json() == {"schedule": list(DEFAULT_SCHEDULE), "jitter": 0.1}
    assert parse_retry({"schedule": [0.0, 60.0]}).to_json()["schedule"] == [0, 60]


@settings(max_examples=300, deadline=None)
@given(
    delays=st.lists(st.floats(0, 7 * 86400), min_size=2, max_size=10),
    jitter=st.floats(0, 1),
    rand=st.floats(0, 1, exclude_max=True),
    data=st.data(),
)
def test_jitter_stays_within_its_fraction(
    delays: list[float], jitter: float, rand: float, data: st.DataObject
) -> None:
    policy = RetryPolicy(tuple(delays), jitter)
    failed = data.draw(st.integers(1, len(delays) - 1))
    delay = policy.next_delay(failed, rand=rand)
    assert delay is not None
    scheduled = delays[failed]
    assert delay >= 0
    assert scheduled * (1 - jitter) - 1e-6 <= delay <= scheduled * (1 + jitter) + 1e-6
    assert policy.next_delay(failed, rand=0.5) == pytest.approx(scheduled)
    assert policy.next_delay(len(delays), rand=rand) is None


@settings(max_examples=300, deadline=None)
@given(
    retry_after=st.floats(allow_nan=True, allow_infinity=True) | st.integers(-100, 10**6),
    rand=st.floats(0, 1, exclude_max=True),
)
def test_retry_after_is_a_capped_floor(retry_after: float, rand: float) -> None:
    policy = parse_retry(None)
    plain = policy.next_delay(2, rand=rand)
    delay = policy.next_delay(2, rand=rand, retry_after=retry_after)
    assert plain is not None and delay is not None
    assert delay >= plain
    if not math.isnan(retry_after):
        assert delay >= min(retry_after, MAX_RETRY_AFTER)
    assert delay <= max(plain, MAX_RETRY_AFTER)


def test_retry_after_examples() -> None:
    policy = parse_retry({"schedule": [0, 5, 300], "jitter": 0})
    assert policy.next_delay(1, retry_after=120) == 120  # the remote wants longer
    assert policy.next_delay(2, retry_after=120) == 300  # the schedule is longer
    assert policy.next_delay(1, retry_after=10**9) == 86400  # a hostile remote
    assert policy.next_delay(1, retry_after=-5) == 5
    assert policy.next_delay(1, retry_after=math.nan) == 5


def test_out_of_range_rand_is_clamped() -> None:
    policy = parse_retry({"schedule": [0, 100], "jitter": 0.5})
    assert policy.next_delay(1, rand=0) == 50
    assert policy.next_delay(1, rand=7) == 150
    assert policy.next_delay(1, rand=-1) == 50
    assert policy.next_delay(1, rand=math.nan) == 100


@pytest.mark.parametrize(
    ("spec", "pointer"),
    [
        ([], "/retry"),
        ("fast", "/retry"),
        ({"schedule": []}, "/retry/schedule"),
        ({"schedule": "0,5"}, "/retry/schedule"),
        ({"schedule": [0] * 51}, "/retry/schedule"),
        ({"schedule": [0, 5, -1]}, "/retry/schedule/2"),
        ({"schedule": [0, 5, "60"]}, "/retry/schedule/2"),
        ({"schedule": [0, True]}, "/retry/schedule/1"),
        ({"schedule": [0, math.nan]}, "/retry/schedule/1"),
        ({"schedule": [0, math.inf]}, "/retry/schedule/1"),
        ({"schedule": [0, 7 * 86400 + 1]}, "/retry/schedule/1"),
        ({"schedule": [0, 10**400]}, "/retry/schedule/1"),
        ({"schedule": [0], "jitter": 1.5}, "/retry/jitter"),
        ({"schedule": [0], "jitter": -0.1}, "/retry/jitter"),
        ({"schedule": [0], "jitter": "0.1"}, "/retry/jitter"),
        ({"schedule": [0], "attempts": 3}, "/retry/attempts"),
        ({"schedule": [0], "factor": 2}, "/retry/factor"),
        ({"schedule": [0], "a/b": 2}, "/retry/a~1b"),
        ({"attempts": 0, "initial": 1}, "/retry/attempts"),
        ({"attempts": 51, "initial": 1}, "/retry/attempts"),
        ({"attempts": 2.5, "initial": 1}, "/retry/attempts"),
        ({"attempts": True, "initial": 1}, "/retry/attempts"),
        ({"attempts": 3}, "/retry/initial"),
        ({"attempts": 3, "initial": 0}, "/retry/initial"),
        ({"attempts": 3, "initial": -1}, "/retry/initial"),
        ({"attempts": 3, "initial": 1, "factor": 0.5}, "/retry/factor"),
        ({"attempts": 3, "initial": 1, "factor": 10**400}, "/retry/factor"),
        ({"attempts": 3, "initial": 1, "maxDelay": -1}, "/retry/maxDelay"),
        ({"attempts": 3, "initial": 1, "maxDelay": 8 * 86400}, "/retry/maxDelay"),
        ({"attempts": 3, "initial": 1, "schedul": [0]}, "/retry/schedul"),
    ],
)
def test_invalid_specs_name_the_pointer(spec: Any, pointer: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_retry(spec)
    assert info.value.field == pointer


def test_a_custom_root_pointer() -> None:
    with pytest.raises(InvalidInput) as info:
        parse_retry({"schedule": [0, -1]}, field="/actions/0/retry")
    assert info.value.field == "/actions/0/retry/schedule/1"


def test_direct_construction_is_checked() -> None:
    for delays, jitter in (((), 0.1), ((0, -1), 0.1), ((0,), 2.0)):
        with pytest.raises(ValueError):
            RetryPolicy(delays, jitter)


JUNK = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(["schedule", "jitter", "attempts", "initial", "factor", "maxDelay"])
            | st.text(max_size=3),
            inner,
            max_size=4,
        )
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(spec=JUNK, failed=st.integers(1, 60), rand=st.floats(0, 1, exclude_max=True))
def test_junk_specs_parse_or_raise_invalid_input(spec: Any, failed: int, rand: float) -> None:
    try:
        policy = parse_retry(spec)
    except InvalidInput as exc:
        assert exc.field is not None and exc.field.startswith("/retry")
        return
    delay = policy.next_delay(failed, rand=rand)
    assert delay is None or 0 <= delay <= 7 * 86400 * 2
    assert parse_retry(policy.to_json()) == policy


# -- the Retry-After header ------------------------------------------------------

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("120", 120.0),
        ("  0 ", 0.0),
        ("1.5", 1.5),
        ("Wed, 01 May 2024 12:02:00 GMT", 120.0),
        ("Wed, 01 May 2024 13:02:00 +0100", 120.0),
        ("Wed, 01 May 2024 12:02:00 -0000", 120.0),  # no zone: HTTP-dates are UTC
        ("Wednesday, 01-May-24 12:00:30 GMT", 30.0),  # RFC 850
        ("Wed May  1 12:00:10 2024", 10.0),  # asctime
        ("Tue, 30 Apr 2024 12:00:00 GMT", 0.0),  # in the past: go now
        (None, None),
        ("", None),
        ("soon", None),
        ("-5", None),
        ("1e3", None),
        ("12 seconds", None),
        ("Wed, 01 May 99999 12:00:00 GMT", None),
        ("Wed, 01 May 2024 25:00:00 GMT", None),
        ("9" * 400, None),
    ],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header, NOW) == expected


@given(when=st.datetimes(datetime(1971, 1, 1), datetime(2999, 1, 1), timezones=st.just(UTC)))
def test_http_dates_round_trip(when: datetime) -> None:
    when = when.replace(microsecond=0)
    header = format_datetime(when, usegmt=True)
    assert parse_retry_after(header, NOW) == max(0.0, when.timestamp() - NOW)


@given(header=st.text(max_size=40) | st.from_regex(r"[A-Za-z]{3}, \d{1,2} \w{3} \d{1,6} .*"))
def test_parse_retry_after_never_raises(header: str) -> None:
    result = parse_retry_after(header, NOW)
    assert result is None or (result >= 0 and math.isfinite(result))
