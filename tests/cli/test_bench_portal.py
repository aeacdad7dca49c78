"""The portal scenario of ``tidings bench`` at its quick size: every user's
stream opens, every operation's event reaches the other user's stream, and
the figures are there (their values are printed by the bench, never
asserted)."""

from __future__ import annotations

import pytest

from tidings.bench import portal


@pytest.mark.slow
def test_the_portal_scenario_times_every_operation_to_the_other_stream() -> None:
    result = portal.run(quick=True)
    params = portal.QUICK
    assert result["users"] == params["organisations"] * params["users_per_organisation"]
    assert result["streams_connected"] == result["users"]
    assert result["operations"] == params["rate"] * params["duration_s"]
    assert result["errors"] == {} and result["missing"] == 0
    timed = result["latency_created"], result["latency_triaged"], result["api"]
    assert all(summary["p50_ms"] is not None for summary in timed)
    assert result["server_cpu_pct"] is not None
