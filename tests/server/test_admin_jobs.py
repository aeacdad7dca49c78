"""``/admin/jobs`` over real HTTP on both backends: the list, Retry and
Discard through the page's forms (checked through the JSON API), a post
without the CSRF token changes nothing, bulk retry of a filtered set, the
replay's dry-run count then the replay, and a tenant-bound key that sees
and changes its tenant's jobs only."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from admin_http import AdminUI
from dead_jobs import completed, dead_job, failing_rule, job, wait_status
from receivers import WebhookReceiver
from support import Admin, ServerProcess


@pytest.fixture
def hub(automation_server: ServerProcess) -> Iterator[Admin]:
    client = Admin(automation_server.url)
    yield client
    client.close()


@pytest.fixture
def ui(automation_server: ServerProcess) -> Iterator[AdminUI]:
    client = AdminUI(automation_server.url)
    yield client
    client.close()


def test_the_list_shows_dead_jobs_with_their_attempts(
    hub: Admin, ui: AdminUI, receiver: WebhookReceiver
) -> None:
    tenant = hub.tenant()
    dead = dead_job(hub, receiver, tenant)
    page = ui.get("/admin/jobs", params={"tenant": tenant})
    assert page.status_code == 200
    html = page.text
    assert f'id="job-{dead["id"]}"' in html
    assert f'href="/admin/log/{dead["eventId"]}?tenantId={tenant}"' in html
    assert dead["ruleId"] in html and "HTTP 500" in html
    assert ">Retry</button>" in html and ">Discard</button>" in html
    pending = ui.get("/admin/jobs", params={"tenant": tenant, "status": "pending"}).text
    assert f'id="job-{dead["id"]}"' not in pending and "No jobs here" in pending


def test_pages_go_back_in_time_with_before(
    hub: Admin, ui: AdminUI, receiver: WebhookReceiver
) -> None:
    tenant = hub.tenant()
    older = dead_job(hub, receiver, tenant)
    newer = dead_job(hub, receiver, tenant)
    page = ui.get("/admin/jobs", params={"tenant": tenant, "before": newer["id"]}).text
    assert f'id="job-{older["id"]}"' in page and f'id="job-{newer["id"]}"' not in page
    assert "← Newest" in page
    # the event page's link: one event's jobs
    only = ui.get("/admin/jobs", params={"status": "all", "event": older["eventId"]}).text
    assert f'id="job-{older["id"]}"' in only and f'id="job-{newer["id"]}"' not in only


def test_bad_filters_name_the_field(ui: AdminUI) -> None:
    for params, field in (
        ({"since": "yesterday"}, "Since"),
        ({"status": "lost"}, "Status"),
        ({"before": "-1"}, "Before"),
    ):
        page = ui.get("/admin/jobs", params=params)
        assert page.status_code == 422 and 'role="alert"' in page.text, params
        assert field in page.text, params


def test_retry_from_the_row_runs_the_job_again(
    hub: Admin, ui: AdminUI, receiver: WebhookReceiver
) -> None:
    dead = dead_job(hub, receiver, hub.tenant())
    row = ui.post(f"/admin/jobs/{dead['id']}/retry", htmx=True)
    assert row.status_code == 200
    assert row.text.lstrip().startswith(f'<tr id="job-{dead["id"]}"')
    assert "Queued to run now" in row.text
    done = wait_status(hub, dead["id"], "succeeded")  # the receiver answers 200 now
    assert len(done["attempts"]) == 2 and done["attempts"][-1]["outcome"] == "succeeded"


def test_discard_needs_a_reason_and_keeps_it(
    hub: Admin, ui: AdminUI, receiver: WebhookReceiver
) -> None:
    dead = dead_job(hub, receiver, hub.tenant())
    refused = ui.post(f"/admin/jobs/{dead['id']}/discard", {"reason": "  "}, htmx=True)
    assert refused.status_code == 200 and "Reason:" in refused.text
    assert job(hub, dead["id"])["status"] == "dead"  # nothing changed
    plain = ui.post(f"/admin/jobs/{dead['id']}/discard", {"reason": "customer left"})
    assert plain.status_code == 303 and plain.headers["location"] == "/admin/jobs"
    after = job(hub, dead["id"])
    assert after["status"] == "discarded" and after["discardReason"] == "customer left"


def test_a_post_without_the_csrf_token_changes_nothing(
    hub: Admin, ui: AdminUI, receiver: WebhookReceiver
) -> None:
    dead = dead_job(hub, receiver, hub.tenant())
    for path, data in (
        (f"/admin/jobs/{dead['id']}/retry", {"csrf": ""}),
        (f"/admin/jobs/{dead['id']}/discard", {"csrf": "0" * 32, "reason": "x"}),
        ("/admin/jobs/retry", {"csrf": ""}),
        ("/admin/jobs/replay", {"csrf": "", "since": "0", "until": "9999999999"}),
    ):
        assert ui.post(path, data).status_code == 403, path
    assert job(hub, dead["id"])["status"] == "dead"


def test_bulk_retry_retries_the_filtered_set_only(
    hub: Admin, ui: AdminUI, receiver: WebhookReceiver
) -> None:
    tenant, other = hub.tenant(), hub.tenant()
    first = dead_job(hub, receiver, tenant)
    second = dead_job(hub, receiver, tenant)
    elsewhere = dead_job(hub, receiver, other)
    page = ui.get("/admin/jobs", params={"tenant": tenant}).text
    assert "Retry all 2" in page
    finished = ui.post("/admin/jobs/retry", {"tenant": tenant, "status": "succeeded"}, htmx=True)
    assert "Retried 0 jobs" in finished.text  # bulk retry never re-runs finished work
    answer = ui.post("/admin/jobs/retry", {"tenant": tenant, "status": "attention"}, htmx=True)
    assert answer.status_code == 200 and "Retried 2 jobs" in answer.text
    assert 'id="job-tabs"' in answer.text and 'hx-swap-oob="true"' in answer.text
    for dead in (first, second):
        assert job(hub, dead["id"])["status"] in ("pending", "running", "succeeded")
    assert job(hub, elsewhere["id"])["status"] == "dead"


def test_replay_counts_first_then_queues(
    hub: Admin, ui: AdminUI, receiver: WebhookReceiver
) -> None:
    tenant = hub.tenant()
    since = datetime.now(UTC) - timedelta(seconds=5)
    for user in ("u1", "u2", "u3"):
        hub.publish(completed(tenant, user)).raise_for_status()
    rule_id = failing_rule(hub, receiver, tenant)  # made after the events: they have no job
    window = {
        "since": since.strftime("%Y-%m-%dT%H:%M:%S"),
        "until": (datetime.now(UTC) + timedelta(seconds=5)).strftime("%Y-%m-%dT%H:%M:%S"),
        "tenant": tenant,
    }
    count = ui.post("/admin/jobs/replay/count", window, htmx=True)
    assert count.status_code == 200, count.text
    assert "3 jobs would be queued" in count.text and ">Replay 3 jobs</button>" in count.text
    assert hub.http.get("/api/admin/jobs", params={"ruleId": rule_id}).json()["items"] == []
    done = ui.post("/admin/jobs/replay", window, htmx=True)
    assert "3 jobs queued" in done.text
    items = hub.http.get("/api/admin/jobs", params={"ruleId": rule_id}).json()["items"]
    assert len(items) == 3
    empty = ui.post("/admin/jobs/replay/count", {**window, "until": ""}, htmx=True)
    assert 'role="alert"' in empty.text and "To:" in empty.text


def test_a_tenant_bound_key_sees_and_changes_its_tenant_only(
    hub: Admin, automation_server: ServerProcess, receiver: WebhookReceiver
) -> None:
    mine, theirs = hub.tenant(), hub.tenant()
    own = dead_job(hub, receiver, mine)
    foreign = dead_job(hub, receiver, theirs)
    bound = AdminUI(automation_server.url, key=hub.api_key(["admin"], tenant_id=mine))
    try:
        page = bound.get("/admin/jobs", params={"tenant": theirs}).text  # the tenant is fixed
        assert f'id="job-{own["id"]}"' in page and f'id="job-{foreign["id"]}"' not in page
        assert bound.post(f"/admin/jobs/{foreign['id']}/retry", htmx=True).status_code == 404
        discard = bound.post(f"/admin/jobs/{foreign['id']}/discard", {"reason": "mine now"})
        assert discard.status_code == 404
        bulk = bound.post("/admin/jobs/retry", {"tenant": theirs}, htmx=True)
        assert "Retried 1 job" in bulk.text
        assert job(hub, foreign["id"])["status"] == "dead"
        assert job(hub, own["id"])["status"] != "dead"
    finally:
        bound.close()
