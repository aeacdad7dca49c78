"""The benchmark report's comparison tables (pure: no server runs)."""

from __future__ import annotations

from tidings.bench import report
from tidings.bench.run import SCENARIOS, WATCHED, systems_for


def fanout(rate: float, p99: float) -> dict[str, object]:
    return {"deliveries_per_s": rate, "latency": {"p50_ms": p99 / 4, "p99_ms": p99}, "loss": 0}


def test_admin_pages_runs_are_compared_with_and_without() -> None:
    results = {"s2": {"tidings": fanout(100_000, 200), WATCHED: fanout(97_000, 220)}}
    document = report.build(results, {})
    (table,) = [t for t in document["comparisons"] if t["name"] == "admin_pages"]
    rows = {row["metric"]: row for row in table["rows"]}
    assert rows["deliveries/s"]["ratio"] == 0.97
    assert rows["latency p99"]["ratio"] == 1.1
    assert any("--admin-pages" in note for note in document["notes"])
    assert not any("PostgreSQL tables" in note for note in document["notes"])


def test_only_fan_out_scenarios_run_again_with_admin_pages() -> None:
    assert WATCHED in systems_for(SCENARIOS["s2"], False, None, admin_browsers=3)
    assert WATCHED in systems_for(SCENARIOS["s3"], False, None, admin_browsers=3)
    assert WATCHED not in systems_for(SCENARIOS["publish"], False, None, admin_browsers=3)
    assert WATCHED not in systems_for(SCENARIOS["s2"], False, None)
