from __future__ import annotations

import time

from hypothesis import given
from hypothesis import strategies as st
from ulid import ULID

from tidings.core.ids import new_event_id, new_event_ids, new_ulid


@given(st.integers(min_value=0, max_value=2**48 - 1))
def test_ids_are_valid_ulids_carrying_their_time(ms: int) -> None:
    text = new_ulid(ms)
    assert len(text) == 26
    parsed = ULID.from_str(text)
    assert parsed.milliseconds == ms


def test_event_ids_are_unique_and_time_ordered() -> None:
    ids = [new_event_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    assert all(i.startswith("evt_") and len(i) == 30 for i in ids)
    now = int(time.time() * 1000)
    assert abs(ULID.from_str(ids[-1][4:]).milliseconds - now) < 5_000
    assert ids[0][4:14] <= ids[-1][4:14]  # the time part never goes back


@given(st.integers(min_value=0, max_value=600))
def test_batches_of_ids_are_unique_valid_ulids(count: int) -> None:
    ids = [*new_event_ids(count), new_event_id(), *new_event_ids(count)]
    assert len(set(ids)) == len(ids) == 2 * count + 1
    now = int(time.time() * 1000)
    for each in ids:
        assert each.startswith("evt_")
        assert abs(ULID.from_str(each[4:]).milliseconds - now) < 5_000


def test_a_forked_child_never_repeats_its_parents_ids() -> None:
    import os

    new_event_id()  # the parent's pool is filled
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(write, new_event_id().encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    parent = new_event_id()
    assert child[4:14] <= parent[4:14] and child[14:] != parent[14:]


def test_monotonic_ids_sort_in_creation_order_within_a_millisecond() -> None:
    from tidings.core.ids import new_monotonic_ulid

    ids = [new_monotonic_ulid() for _ in range(5_000)]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all(ULID.from_str(i) for i in ids[:10])
