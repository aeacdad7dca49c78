"""Per-rule retry schedules (pure: no I/O, no clock, no randomness).

A schedule lists the delay *before* each attempt: attempt 1 runs
``delays[0]`` seconds after the job is created (usually at once), attempt
``n + 1`` runs ``delays[n]`` seconds after attempt ``n`` failed, and when
the last attempt fails the job is dead. The default is the Standard
Webhooks / Svix schedule: immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h,
10 h.

The caller supplies the clock (``now``) and the random draw (``rand``), so
every decision here is reproducible in tests.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any, Final

from tidings.core.pointers import pointer_token
from tidings.errors import InvalidInput

DEFAULT_SCHEDULE: Final = (0, 5, 300, 1800, 7200, 18000, 36000, 36000)
DEFAULT_JITTER: Final = 0.1
MAX_ATTEMPTS: Final = 50
MAX_DELAY: Final = 7 * 86400  # per scheduled delay
MAX_RETRY_AFTER: Final = 86400  # a hostile server cannot park a job longer
DEFAULT_FACTOR: Final = 2
MAX_FACTOR: Final = 1000  # anything larger reaches maxDelay at once anyway
DEFAULT_MAX_DELAY: Final = 86400

_SCHEDULE_KEYS = frozenset({"schedule", "jitter"})
_EXPONENTIAL_KEYS = frozenset({"attempts", "initial", "factor", "maxDelay", "jitter"})
_DELTA_SECONDS_RE = re.compile(r"[0-9]+(?:\.[0-9]+)?")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    delays: tuple[float, ...] = DEFAULT_SCHEDULE
    jitter: float = DEFAULT_JITTER  # +/- this fraction of each delay

    def __post_init__(self) -> None:
        # parse_retry gives friendly errors; this only guards direct construction.
        if not 1 <= len(self.delays) <= MAX_ATTEMPTS:
            raise ValueError(f"a retry schedule has 1 to {MAX_ATTEMPTS} delays")
        if not all(0 <= d <= MAX_DELAY for d in self.delays):
            raise ValueError(f"retry delays are between 0 and {MAX_DELAY} seconds")
        if not 0 <= self.jitter <= 1:
            raise ValueError("jitter is between 0 and 1")

    @property
    def max_attempts(self) -> int:
        return len(self.delays)

    def first_delay(self) -> float:
        """Seconds before attempt 1 (not jittered: usually 0, run at once)."""
        return self.delays[0]

    def next_delay(
        self, failed_attempts: int, *, retry_after: float | None = None, rand: float = 0.5
    ) -> float | None:
        """Seconds to wait before the next attempt after ``failed_attempts``
        failures, or None when none remain (the job is dead).

        ``rand`` (uniform in [0, 1), from the caller) spreads retries of many
        jobs that failed together; ``retry_after`` (what the remote asked
        for) is a floor, capped at :data:`MAX_RETRY_AFTER`.
        """
        if failed_attempts < 1:
            raise ValueError("next_delay is asked after at least one failed attempt")
        if failed_attempts >= len(self.delays):
            return None
        rand = min(max(rand, 0.0), 1.0) if not math.isnan(rand) else 0.5
        delay = max(0.0, self.delays[failed_attempts] * (1 + self.jitter * (2 * rand - 1)))
        if retry_after is not None and not math.isnan(retry_after):
            delay = max(delay, min(max(retry_after, 0.0), MAX_RETRY_AFTER))
        return delay

    def to_json(self) -> dict[str, Any]:
        return {"schedule": list(self.delays), "jitter": self.jitter}


DEFAULT_POLICY: Final = RetryPolicy()


# -- parsing -------------------------------------------------------------------


def _number(value: Any, low: float, high: float, message: str, field: str) -> float:
    """A JSON number (booleans are not) in ``[low, high]``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(message, field=field)
    if not low <= value <= high:  # also refuses NaN; ints compare exactly, however big
        raise InvalidInput(message, field=field)
    # Integral floats as ints, so to_json prints 300 rather than 300.0.
    return value if isinstance(value, int) or not value.is_integer() else int(value)


def _schedule(schedule: Any, field: str) -> tuple[float, ...]:
    if not isinstance(schedule, list) or not 1 <= len(schedule) <= MAX_ATTEMPTS:
        raise InvalidInput(
            f"schedule is a list of 1 to {MAX_ATTEMPTS} delays in seconds", field=field
        )
    message = f"delays are numbers of seconds from 0 to {MAX_DELAY}"
    return tuple(_number(d, 0, MAX_DELAY, message, f"{field}/{i}") for i, d in enumerate(schedule))


def _exponential(spec: dict[str, Any], field: str) -> tuple[float, ...]:
    """``attempts`` delays: 0, then ``initial`` growing by ``factor``, capped."""
    attempts = _number(
        spec.get("attempts"),
        1,
        MAX_ATTEMPTS,
        f"attempts is a whole number from 1 to {MAX_ATTEMPTS}",
        f"{field}/attempts",
    )
    if not isinstance(attempts, int):
        raise InvalidInput("attempts is a whole number", field=f"{field}/attempts")
    if "initial" not in spec:
        raise InvalidInput("initial is required", field=f"{field}/initial")
    initial = _number(
        spec["initial"], 0, MAX_DELAY, "initial is a number of seconds", f"{field}/initial"
    )
    if initial == 0:
        raise InvalidInput("initial must be above 0 seconds", field=f"{field}/initial")
    factor = _number(
        spec.get("factor", DEFAULT_FACTOR),
        1,
        MAX_FACTOR,
        f"factor is a number from 1 to {MAX_FACTOR}",
        f"{field}/factor",
    )
    cap = _number(
        spec.get("maxDelay", DEFAULT_MAX_DELAY),
        0,
        MAX_DELAY,
        f"maxDelay is a number of seconds from 0 to {MAX_DELAY}",
        f"{field}/maxDelay",
    )
    delays: list[float] = [0]
    delay = min(initial, cap)
    while len(delays) < attempts:
        delays.append(int(delay) if float(delay).is_integer() else delay)
        delay = min(delay * factor, cap)  # capping every step keeps it finite
    return tuple(delays)


def parse_retry(spec: Any, *, field: str = "/retry") -> RetryPolicy:
    """A rule's ``retry`` JSON: None (the default policy), an explicit
    ``{"schedule": [...], "jitter": j}`` or an exponential
    ``{"attempts", "initial", "factor", "maxDelay", "jitter"}``. An object
    with neither ``schedule`` nor ``attempts`` keeps the default schedule."""
    if spec is None:
        return DEFAULT_POLICY
    if not isinstance(spec, dict):
        raise InvalidInput("retry must be an object", field=field)
    if "schedule" in spec and "attempts" in spec:
        raise InvalidInput("give either schedule or attempts, not both", field=f"{field}/attempts")
    allowed = _EXPONENTIAL_KEYS if "attempts" in spec else _SCHEDULE_KEYS
    for key in spec:
        if key not in allowed:
            if not isinstance(key, str):
                raise InvalidInput("object keys must be strings", field=field)
            raise InvalidInput(f"unknown key {key!r}", field=f"{field}/{pointer_token(key)}")
    jitter = _number(
        spec.get("jitter", DEFAULT_JITTER),
        0,
        1,
        "jitter is a fraction from 0 to 1",
        f"{field}/jitter",
    )
    if "attempts" in spec:
        delays = _exponential(spec, field)
    elif "schedule" in spec:
        delays = _schedule(spec["schedule"], f"{field}/schedule")
    else:
        delays = DEFAULT_SCHEDULE
    return RetryPolicy(delays, jitter)


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds from ``now`` (epoch seconds) that an HTTP ``Retry-After``
    header asks to wait: delta-seconds or an HTTP-date. None when absent or
    unparseable; a date in the past gives 0. The one parser of the header:
    the webhook action and the SDK both read it here."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if _DELTA_SECONDS_RE.fullmatch(text):
        seconds = float(text)
        return seconds if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(text)
        if when.tzinfo is None:  # "-0000" and asctime dates: HTTP-dates are UTC
            when = when.replace(tzinfo=UTC)
        return max(0.0, when.timestamp() - now)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


__all__ = [
    "DEFAULT_POLICY",
    "DEFAULT_SCHEDULE",
    "MAX_ATTEMPTS",
    "MAX_DELAY",
    "MAX_RETRY_AFTER",
    "RetryPolicy",
    "parse_retry",
    "parse_retry_after",
]
