"""Cumulative buckets: every observation counted, Prometheus' ``le`` rule."""

from __future__ import annotations

import math

import pytest

from tidings.core.envelope import Event
from tidings.core.histogram import Buckets
from tidings.hub.hub import Hub


def test_an_observation_on_a_bound_counts_in_that_bucket() -> None:
    buckets = Buckets((0.1, 1.0))
    for value in (0.05, 0.1, 0.5, 1.0, 7.0):
        buckets.observe(value)
    assert buckets.cumulative() == [(0.1, 2), (1.0, 4), (math.inf, 5)]
    assert buckets.count == 5 and buckets.total == pytest.approx(8.65)


def test_bounds_must_increase() -> None:
    with pytest.raises(ValueError, match="increasing"):
        Buckets((1.0, 0.5))


def test_the_hub_counts_every_dispatch_latency_beyond_ten_thousand() -> None:
    """The old list kept 10,000 latencies between scrapes and dropped the
    rest; the histogram /metrics reads counts all of them."""
    hub = Hub(heartbeat_s=15, retry_ms=1000)
    event = Event("e", "t.x.y", "acme", None, None, "y", "", None, {}, {}, ("role:a",), "1")
    for position in range(1, 25_001):
        event.position = position
        hub.dispatch([event], committed_at=0.0)
    assert hub.stats.latency.count == 25_000
    assert hub.stats.latency.cumulative()[-1][1] == 25_000
    assert len(hub.stats.latencies) <= 10_000  # the sampler's share stays bounded
