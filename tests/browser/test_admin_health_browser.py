"""The Health page and the front door in Chromium: the uPlot charts render
and move after publishing, the tiles and readiness dots update, a
tenant-bound admin gets no node-wide charts; screenshots ``admin-health``,
``admin-health-tenant``, ``front-door``."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from admin_ui import AdminTab, log_in, new_tab
from pg import PostgresServer
from support import Admin, ServerProcess
from test_browser import WAIT_MS, car

pytestmark = pytest.mark.browser


def until(page: Page, holds: Callable[[], bool], seconds: float = WAIT_MS / 1000) -> None:
    """Poll from Python: the page's CSP forbids the eval wait_for_function uses."""
    deadline = time.monotonic() + seconds
    while not holds():
        assert time.monotonic() < deadline, "the page did not update"
        page.wait_for_timeout(250)


def publish_for(admin: Admin, tenant: str, count: int, every_s: float = 0.05) -> threading.Thread:
    """Publish ``count`` events in the background, spread over some seconds
    (so the rates chart shows a curve rather than one spike)."""

    def run() -> None:
        stop = threading.Event()
        for i in range(count):
            admin.publish(car(tenant, f"car-{i}")).raise_for_status()
            stop.wait(every_s)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_the_health_page_charts_update_live(
    admin_tab: AdminTab, browser: Browser, ui_server: ServerProcess
) -> None:
    admin = Admin(ui_server.url)
    tenant = admin.tenant()
    # A live page of a user of the tenant: a connection and deliveries.
    viewer = browser.new_context().new_page()
    try:
        viewer.goto(f"{ui_server.url}/live#token={admin.user(tenant, 'alice', grant=['qms.read'])}")
        viewer.wait_for_selector('#status[data-state="connected"]', timeout=WAIT_MS)
        page = admin_tab.open("/admin")
        assert page.title().startswith("Health")
        page.locator('[data-chart="rates"] canvas').first.wait_for(timeout=WAIT_MS)
        assert page.locator(".uplot").count() >= 3  # rates, latency, connections (+ queue)
        section = page.locator("[data-series]")
        assert float(section.get_attribute("data-published-peak") or 0) == 0

        publish_for(admin, tenant, 120).join(timeout=60)
        until(page, lambda: float(section.get_attribute("data-published-peak") or 0) > 0)
        connections = page.locator('[data-tile="connections"] .value')
        until(page, lambda: connections.inner_text().strip() == "1")
        page.locator('[data-tile="head"] .value', has_text="120").wait_for(timeout=WAIT_MS)
        page.locator('[data-chart="latency"] canvas').first.wait_for(timeout=WAIT_MS)
        assert page.locator('[data-check="Database"][data-state="ok"] .dot.ok').count() == 1
        assert page.locator('[data-check="SMTP"] .dot.warn').count() == 1
        assert page.locator("table.nodes tbody tr").count() == 1
        assert page.locator(".live-badge.stalled").count() == 0
        page.wait_for_timeout(2500)  # one more poll, so the curve has its tail
        admin_tab.shot("admin-health")
    finally:
        viewer.context.close()
        admin.close()


def test_a_tenant_bound_admin_gets_its_figures_without_node_charts(
    browser: Browser, ui_server: ServerProcess
) -> None:
    admin = Admin(ui_server.url)
    tenant = admin.tenant()
    context, tab = new_tab(browser, ui_server.url)
    try:
        log_in(tab, admin.api_key(["admin"], tenant_id=tenant))
        page = tab.page
        page.locator('[data-tile="queue"]').wait_for(timeout=WAIT_MS)
        assert page.locator("[data-chart]").count() == 0
        assert page.locator('[data-tile="storage"]').count() == 0
        assert page.locator('[data-tile="head"] .value').inner_text().strip() == "0"
        position = admin.publish(car(tenant, "car-1")).json()["position"]
        page.locator('[data-tile="head"] .value', has_text=f"{position:,}").wait_for(
            timeout=WAIT_MS
        )
        assert page.get_by_role("link", name="Failed work").count() >= 1
        assert tenant in page.locator(".page-head").inner_text()
        tab.shot("admin-health-tenant")
        tab.assert_clean()
    finally:
        context.close()
        admin.close()


def test_the_front_door(browser: Browser, ui_server: ServerProcess) -> None:
    context, tab = new_tab(browser, ui_server.url)
    try:
        page = tab.open("/")
        assert page.locator("h1").inner_text().startswith("Tidings")
        links = page.locator("nav.links")
        for name in ("Integration Manager", "API documentation", "Live events", "Readiness"):
            assert links.get_by_role("link", name=name).count() == 1, name
        tab.shot("front-door")
        links.get_by_role("link", name="Integration Manager").click()
        page.wait_for_url(lambda url: "/admin/login" in url)
        tab.assert_clean()
    finally:
        context.close()


def test_two_processes_on_postgresql_show_a_series_each(
    browser: Browser, postgres: PostgresServer, tmp_path: Path
) -> None:
    # Not pg_url: its template is migrated with asyncio.run, which cannot run
    # beside Playwright's loop; the first server migrates the new database.
    pg_url = postgres.url(postgres.create_database())
    first = ServerProcess(pg_url).start(tmp_path / "first.log")
    second = None
    context, tab = new_tab(browser, first.url)
    try:
        second = ServerProcess(pg_url).start(tmp_path / "second.log")
        admin = Admin(second.url)
        tenant = admin.tenant()
        log_in(tab)
        page = tab.page
        rows = page.locator("table.nodes tbody tr")
        until(page, lambda: rows.count() == 2, seconds=40)
        publisher = publish_for(admin, tenant, 100, every_s=0.1)
        card = page.locator("[data-nodes-card]")
        until(page, lambda: card.is_visible(), seconds=40)
        page.locator('[data-chart="nodes"] canvas').first.wait_for(timeout=WAIT_MS)
        chart = page.locator('[data-chart="nodes"]')
        assert chart.get_attribute("data-series-count") == "2"
        until(page, lambda: "0.0" not in rows.nth(1).locator("td").nth(4).inner_text(), seconds=40)
        publisher.join(timeout=60)
        admin.close()
        tab.shot("admin-health-processes")
        tab.assert_clean()
    finally:
        context.close()
        if second is not None:
            second.stop()
        first.stop()
