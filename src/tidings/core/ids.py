"""Event ids: ``evt_`` + a ULID (48-bit millisecond time, 80 random bits,
Crockford base32), sortable by creation time.

Generated here rather than with python-ulid's object API because ids are
minted once per published event on the hot path: each of 16 random bytes
becomes one Crockford character through ``bytes.translate`` (its low 5 bits;
256 is a multiple of 32, so characters stay uniform: 80 random bits), and
the time part is encoded once per millisecond. ``tests/core/test_ids.py`` checks
the result against python-ulid's parser.
"""

from __future__ import annotations

import os
import threading
import time

_CROCKFORD = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_BYTE_TO_CHAR = bytes(_CROCKFORD[b & 31] for b in range(256))
_last_ms = -1
_last_time = ""
_lock = threading.Lock()
_pool = b""
_offset = 0
_POOL_BYTES = 4096  # 256 ids per getrandom call


def _encode_time(ms: int) -> str:
    chars = []
    for _ in range(10):
        ms, digit = divmod(ms, 32)
        chars.append(chr(_CROCKFORD[digit]))
    return "".join(reversed(chars))


def new_ulid(now_ms: int | None = None) -> str:
    return _time_part(now_ms) + _random_chars()


def _time_part(now_ms: int | None = None) -> str:
    """The 10-character time part, encoded once per millisecond."""
    global _last_ms, _last_time
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    if ms != _last_ms:
        _last_ms, _last_time = ms, _encode_time(ms)
    return _last_time


def _random_chars(count: int = 1) -> str:
    """``count`` x 16 random Crockford characters, from a pool refilled 256
    ids at a time (one ``getrandom`` call instead of one per id). The lock
    keeps two threads from ever taking the same bytes; a forked child starts
    with an empty pool, so it never repeats its parent's ids."""
    global _offset
    needed = 16 * count
    with _lock:
        if _offset + needed > len(_pool) and needed <= _POOL_BYTES:
            _refill()
        if _offset + needed <= len(_pool):
            chunk = _pool[_offset : _offset + needed]
            _offset += needed
        else:  # a batch larger than the pool: one call of its own
            chunk = os.urandom(needed)
    return chunk.translate(_BYTE_TO_CHAR).decode()


def _refill() -> None:
    global _pool, _offset
    _pool, _offset = os.urandom(_POOL_BYTES), 0


def _forget_pool() -> None:
    global _pool, _offset
    _pool, _offset = b"", 0


os.register_at_fork(after_in_child=_forget_pool)


def new_event_id() -> str:
    return "evt_" + new_ulid()


def new_event_ids(count: int) -> list[str]:
    """``count`` event ids at once (a batch): one lock, one translate."""
    prefix = "evt_" + _time_part()
    chars = _random_chars(count)
    return [prefix + chars[i : i + 16] for i in range(0, 16 * count, 16)]


_mono_last: tuple[int, int] = (-1, 0)


def new_monotonic_ulid() -> str:
    """A ULID that sorts after every earlier one from this process, even
    within one millisecond (the random part is incremented): for ids that
    double as a newest-first cursor, such as notifications."""
    global _mono_last
    ms = int(time.time() * 1000)
    with _lock:
        last_ms, last_random = _mono_last
        if ms <= last_ms:
            ms, randomness = last_ms, last_random + 1
        else:
            randomness = int.from_bytes(os.urandom(10), "big") >> 1  # room to increment
        _mono_last = (ms, randomness)
    chars = []
    for _ in range(16):
        randomness, digit = divmod(randomness, 32)
        chars.append(chr(_CROCKFORD[digit]))
    return _encode_time(ms) + "".join(reversed(chars))
