"""The benchmark report's comparison tables (pure: no server runs)."""

from __future__ import annotations

from tidings.bench import report
from tidings.bench.run import SCENARIOS, WATCHED, alternated, median_result, systems_for


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


def test_alternated_rounds_report_the_median_of_each_figure() -> None:
    order: list[str] = []
    figures = iter([(90_000, 300), (99_000, 210), (80_000, 400), (96_000, 230)])

    def run(*, system: str) -> dict[str, object]:
        order.append(system)
        return fanout(*next(figures))

    first = {"tidings": fanout(100_000, 200), WATCHED: fanout(97_000, 220)}
    merged = alternated(run, first=first, rounds=3)
    assert order == ["tidings", WATCHED, "tidings", WATCHED]  # without, with, alternately
    assert merged["tidings"]["deliveries_per_s"] == 90_000  # median of 100k, 90k, 80k
    assert merged[WATCHED]["latency"] == {"p50_ms": 55.0, "p99_ms": 220}
    assert [r["deliveries_per_s"] for r in merged["rounds"][WATCHED]] == [97_000, 99_000, 96_000]
    document = report.build({"s2": {"title": "s2", **merged}}, {})
    (table,) = [t for t in document["comparisons"] if t["name"] == "admin_pages"]
    rows = {row["metric"]: row for row in table["rows"]}
    assert rows["deliveries/s"]["ratio"] == 1.08  # 97k / 90k


def test_the_median_of_results_keeps_what_is_not_a_number() -> None:
    merged = median_result(
        [{"a": 1, "b": "x", "c": {"d": 2.0}}, {"a": 3, "b": "y", "c": {"d": 4.0}}]
    )
    assert merged == {"a": 2.0, "b": "x", "c": {"d": 3.0}}
