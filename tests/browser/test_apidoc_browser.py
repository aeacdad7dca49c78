"""``/docs`` renders in Debian's Chromium with every request that leaves
loopback refused: Swagger UI comes from Tidings' packaged copy, shows the
operations, and its Authorize dialog offers the credential schemes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from chromium import chromium, record_off_loopback
from support import ServerProcess, running_server
from test_browser import WAIT_MS

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def docs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(tmp_path_factory.mktemp("docs")) as server:
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


def test_docs_render_offline_with_the_credential_schemes(
    docs_server: ServerProcess, browser: Browser, tmp_path: Path
) -> None:
    refused: list[str] = []

    context = browser.new_context(viewport={"width": 1280, "height": 1600})
    try:
        page = context.new_page()
        record_off_loopback(page, refused)
        page.goto(f"{docs_server.url}/docs")
        log = page.locator("#operations-events-history_api_events_log_get")
        log.wait_for(state="visible", timeout=WAIT_MS)
        assert "/api/events/log" in log.inner_text()
        assert page.locator(".opblock").count() >= 60  # every operation is listed
        page.screenshot(path=str(tmp_path / "docs.png"), full_page=False)

        page.locator("button.authorize").first.click()
        dialog = page.locator(".dialog-ux .modal-ux")
        dialog.wait_for(state="visible", timeout=WAIT_MS)
        text = dialog.inner_text()
        for scheme in ("adminKey", "apiKey", "userToken"):
            assert scheme in text, scheme
        page.screenshot(path=str(tmp_path / "authorize.png"), full_page=False)
    finally:
        context.close()
    assert not refused, refused  # nothing was fetched from outside
