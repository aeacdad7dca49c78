"""/metrics of a real server after real work (publishes, an SSE stream, a
WebSocket, a webhook job against a real receiver), on SQLite and
PostgreSQL: ``promtool check metrics`` finds nothing to complain about,
the families carry the labels the docs promise (route templates, never raw
paths), one scrape sees every delivery before it, and every metric the
Grafana dashboard and the alert rules read exists in the scrape. Also
``tidings worker --metrics-port``."""

from __future__ import annotations

import base64
import json
import re
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from websockets.sync.client import connect

from pg import server_database
from promql_names import Scrape, metric_names
from receivers import WebhookReceiver
from support import ADMIN_KEY, Admin, ServerProcess, bearer, free_port, need, running_server

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "tidings.json"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yaml"
EVENTS = 5
LABELS = r'\{(?:[^"}]|"(?:[^"\\]|\\.)*")*\}'  # {a="x",b="{y}"}: quoted values may hold braces


@dataclass
class Worked:
    """What the workload did, and the scrape taken while its streams were open."""

    server: ServerProcess
    tenant: str
    rule_id: str
    text: str


def car(tenant: str, n: int) -> dict[str, Any]:
    return {"type": "qms.car.updated", "tenantId": tenant, "entityId": f"car-{n}"}


def samples(text: str, name: str) -> dict[str, float]:
    """``{labels: value}`` of the samples called ``name`` (labels as written)."""
    found = {}
    for line in text.splitlines():
        match = re.fullmatch(rf"{re.escape(name)}({LABELS})? (\S+)", line)
        if match:
            found[match.group(1) or ""] = float(match.group(2))
    return found


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def metrics_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("metrics")
    database_url = server_database(request)
    env = {
        "TIDINGS_ALLOW_PRIVATE_WEBHOOKS": "1",
        "TIDINGS_JOB_POLL_S": "0.2",
        "TIDINGS_METRICS_PER_TENANT": "1",
    }
    with running_server(tmp, env=env, database_url=database_url) as server:
        yield server


@pytest.fixture(scope="module")
def worked(metrics_server: ServerProcess) -> Iterator[Worked]:
    """Publishes with an SSE stream and a WebSocket open, a webhook job run
    to success; the scrape is taken while both streams are open."""
    admin = Admin(metrics_server.url)
    receiver = WebhookReceiver()
    try:
        tenant = admin.tenant()
        token = admin.user(tenant, "alice", grant=["qms.read"])
        secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
        rule = {
            "name": "metrics-hook",
            "tenantId": tenant,
            "trigger": {"type": "qms.car.updated"},
            "action": {
                "type": "trigger_webhook",
                "config": {"url": receiver.endpoint("m", secret), "secret": secret},
            },
        }
        created = admin.http.post("/api/admin/rules", json=rule)
        assert created.status_code == 201, created.text
        ws_url = metrics_server.url.replace("http", "ws", 1) + "/ws/events"
        with (
            httpx.Client(base_url=metrics_server.url, timeout=15) as client,
            client.stream("GET", "/api/events", headers=bearer(token)) as stream,
            connect(ws_url, additional_headers=bearer(token), open_timeout=15) as ws,
        ):
            ws.recv(timeout=15)  # "connected"
            for n in range(EVENTS):
                admin.publish(car(tenant, n)).raise_for_status()
            lines = stream.iter_lines()  # kept: a closed iterator closes the connection
            received = 0
            while received < EVENTS:
                received += next(lines).startswith('data: {"id"')
            for _ in range(EVENTS):
                ws.recv(timeout=15)
            receiver.wait_for("m", EVENTS)
            wait_for_attempts(client, EVENTS)
            text = client.get("/metrics").text
        yield Worked(metrics_server, tenant, created.json()["id"], text)
    finally:
        receiver.close()
        admin.close()


def wait_for_attempts(client: httpx.Client, count: int, timeout: float = 20.0) -> None:
    """Until the worker has recorded ``count`` succeeded attempts."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = samples(client.get("/metrics").text, "tidings_job_attempts_total")
        if done.get('{outcome="succeeded"}', 0) >= count:
            return
        time.sleep(0.2)
    raise AssertionError(f"fewer than {count} succeeded attempts after {timeout}s")


def promtool() -> str:
    path = shutil.which("promtool")
    need(path is not None, "promtool (Debian package prometheus)")
    assert path is not None
    return path


def test_promtool_finds_nothing_to_lint(worked: Worked, tmp_path: Path) -> None:
    result = subprocess.run(
        [promtool(), "check", "metrics"],
        input=worked.text.encode(),
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 0 and not result.stdout and not result.stderr, (
        result.stdout.decode() + result.stderr.decode()
    )


def test_the_families_and_their_labels(worked: Worked) -> None:
    text = worked.text
    scrape = Scrape.parse(text)
    for family in ("process_cpu_seconds", "process_resident_memory_bytes", "python_info"):
        assert family in scrape.types, family
    streams = samples(text, "tidings_stream_connections")
    assert streams['{transport="sse"}'] >= 1 and streams['{transport="ws"}'] >= 1
    assert samples(text, "tidings_deliveries_total")[""] >= 2 * EVENTS
    assert samples(text, "tidings_events_published_total")[""] >= EVENTS
    assert samples(text, "tidings_commit_batch_events_count")[""] >= 1
    assert samples(text, "tidings_log_head_position")[""] >= EVENTS
    assert samples(text, "tidings_job_attempts_total")['{outcome="succeeded"}'] >= EVENTS
    assert set(samples(text, "tidings_jobs")) == {
        f'{{status="{s}"}}' for s in ("pending", "failed", "running", "dead")
    }
    hooks = samples(text, "tidings_webhook_duration_seconds_count")
    assert hooks[f'{{rule="{worked.rule_id}"}}'] >= EVENTS
    assert samples(text, "tidings_database_up")[""] == 1
    pools = samples(text, "tidings_db_pool_connections_max")
    assert pools and all(capacity >= 1 for capacity in pools.values())
    tenants = samples(text, "tidings_tenant_events_published_total")
    assert tenants[f'{{tenant="{worked.tenant}"}}'] == EVENTS  # metrics_per_tenant is on


def test_requests_are_labelled_by_route_template(worked: Worked) -> None:
    requests = samples(worked.text, "tidings_http_requests_total")
    published = requests['{method="POST",route="/api/events",status="202"}']
    assert published >= EVENTS
    assert requests['{method="POST",route="/api/admin/rules",status="201"}'] >= 1
    routes = set(re.findall(r'route="([^"]*)"', ",".join(requests)))
    assert all(route.startswith("/") or route == "unmatched" for route in routes)
    assert not any(worked.tenant in route for route in routes)  # never a raw path
    durations = samples(worked.text, "tidings_http_request_duration_seconds_count")
    assert durations['{method="POST",route="/api/events"}'] >= EVENTS
    assert not any('route="/ws/events"' in labels for labels in durations)  # a stream's life


def test_a_route_template_not_the_path(worked: Worked) -> None:
    url = worked.server.url
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as client:
        assert client.get(f"/api/admin/tenants/{worked.tenant}").status_code == 200
        assert client.get("/no/such/path/123").status_code == 404
        text = client.get("/metrics").text
    requests = samples(text, "tidings_http_requests_total")
    assert requests['{method="GET",route="/api/admin/tenants/{tenant_id}",status="200"}'] >= 1
    assert requests['{method="GET",route="unmatched",status="404"}'] >= 1
    assert not any("/no/such/path" in labels for labels in requests)


def test_one_scrape_sees_every_delivery_before_it(worked: Worked) -> None:
    """The known bug: the histogram lagged one scrape (it was fed while
    being collected). Each single publish is one dispatch."""
    admin = Admin(worked.server.url)
    token = admin.user(worked.tenant, "bob", grant=["qms.read"])

    def dispatches() -> float:
        text = httpx.get(f"{worked.server.url}/metrics", timeout=15).text
        return samples(text, "tidings_delivery_latency_seconds_count")[""]

    try:
        before = dispatches()
        with (
            httpx.Client(base_url=worked.server.url, timeout=15) as client,
            client.stream("GET", "/api/events", headers=bearer(token)) as stream,
        ):
            for n in range(3):
                admin.publish(car(worked.tenant, 100 + n)).raise_for_status()
            received = 0
            for line in stream.iter_lines():
                received += line.startswith('data: {"id"')
                if received == 3:
                    break
        assert dispatches() >= before + 3
    finally:
        admin.close()


def test_every_dashboard_query_reads_an_exported_metric(worked: Worked) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    scrape = Scrape.parse(worked.text)
    queries = [
        target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])
    ]
    assert len(queries) >= 20
    names: set[str] = set()
    for query in queries:
        found = metric_names(query)
        assert found, query
        names |= found
    for variable in dashboard["templating"]["list"]:
        query = variable.get("definition", "")
        if query.startswith("label_values("):  # label_values(<selector>, <label>)
            names |= metric_names(query.removeprefix("label_values(").rsplit(",", 1)[0])
    assert not scrape.missing(names), sorted(scrape.missing(names))
    assert any(name.startswith("tidings_tenant_") for name in names)


def test_every_alert_reads_an_exported_metric(worked: Worked) -> None:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    scrape = Scrape.parse(worked.text)
    names = set().union(*(metric_names(rule["expr"]) for rule in rules))
    assert "up" in names  # the hub-down alert, from Prometheus' own series
    assert not scrape.missing(names), sorted(scrape.missing(names))


def test_a_separate_worker_serves_its_metrics(tmp_path: Path) -> None:
    """``tidings worker --metrics-port``: its own scrape target, behind the
    metrics token like /metrics."""
    port = free_port()
    database = f"sqlite:///{tmp_path / 'tidings.db'}"
    env = {"TIDINGS_METRICS_TOKEN": "scrape-me", "TIDINGS_RUN_JOBS": "0"}
    with running_server(tmp_path, env=env, database_url=database):  # migrated, then the worker
        log = open(tmp_path / "worker.log", "wb")  # noqa: SIM115 - closed below
        worker = subprocess.Popen(
            [sys.executable, "-m", "tidings", "worker", "--metrics-port", str(port)],
            env={
                "PATH": "/usr/bin:/bin",
                "TIDINGS_DATABASE_URL": database,
                "TIDINGS_METRICS_TOKEN": "scrape-me",
                "TIDINGS_HOST": "127.0.0.1",
            },
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            url = f"http://127.0.0.1:{port}/metrics"
            text = scrape_when_up(url, {"Authorization": "Bearer scrape-me"}, worker)
            assert httpx.get(url, timeout=10).status_code == 401
        finally:
            worker.terminate()
            worker.wait(20)
            log.close()
    assert 'tidings_job_attempts_total{outcome="succeeded"}' in text
    assert "tidings_http_requests_total" not in text  # no HTTP server in that process
    result = subprocess.run(
        [promtool(), "check", "metrics"], input=text.encode(), capture_output=True, timeout=60
    )
    assert result.returncode == 0 and not result.stdout, result.stdout.decode()


def scrape_when_up(url: str, headers: dict[str, str], proc: subprocess.Popen[bytes]) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError("the worker exited early")
        try:
            response = httpx.get(url, headers=headers, timeout=10)
            if response.status_code == 200:
                return response.text
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("the worker's metrics never answered")
