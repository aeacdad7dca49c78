"""The shipped dashboard and alert rules as files: the dashboard is
dashboard JSON Grafana imports (unique panel ids, a datasource variable,
a PromQL query per target), the rules pass ``promtool check rules``, and
the PromQL name reader the scrape tests use reads names, not functions or
labels. (That every name exists in a real scrape: test_metrics_scrape.py.)"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from promql_names import Scrape, metric_names
from support import need

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "tidings.json"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yaml"


def test_the_dashboard_is_importable_dashboard_json() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["title"] == "Tidings" and dashboard["uid"]
    assert isinstance(dashboard["schemaVersion"], int)
    panels = dashboard["panels"]
    assert len({panel["id"] for panel in panels}) == len(panels)
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    for panel in panels:
        assert {"h", "w", "x", "y"} <= set(panel["gridPos"]), panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["expr"].strip() and target["refId"], panel["title"]


def test_promtool_accepts_the_alert_rules() -> None:
    promtool = shutil.which("promtool")
    need(promtool is not None, "promtool (Debian package prometheus)")
    assert promtool is not None
    result = subprocess.run(
        [promtool, "check", "rules", str(ALERTS)], capture_output=True, timeout=60
    )
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    assert b"SUCCESS: 8 rules found" in result.stdout


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        (
            'histogram_quantile(0.99, sum by (le, route) (rate(a_seconds_bucket{job=~"$job",'
            ' status=~"5.."}[$__rate_interval])))',
            {"a_seconds_bucket"},
        ),
        ("sum(rate(a_total[5m])) / sum(rate(b_total[5m])) > 0.05", {"a_total", "b_total"}),
        ('up{job="tidings"} == 0', {"up"}),
        ("max by (instance) (x_in_use / on (pool) group_left x_max) > 9e-1", {"x_in_use", "x_max"}),
        ('topk(10, sum without (le) (x{tenant="by"}))', {"x"}),
    ],
)
def test_names_are_read_from_promql(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def test_histogram_suffixes_count_only_for_histograms() -> None:
    scrape = Scrape.parse(
        '# TYPE h histogram\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n# TYPE g gauge\ng 1\n'
    )
    assert scrape.missing(["h_bucket", "h_count", "g", "up"]) == set()
    assert scrape.missing(["g_count", "nope"]) == {"g_count", "nope"}
