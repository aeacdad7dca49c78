"""``/docs`` renders in Debian's Chromium with every request that leaves
loopback refused: Swagger UI comes from Tidings' packaged copy, shows the
operations, and its Authorize dialog offers the credential schemes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Route, sync_playwright

from support import ServerProcess, need, running_server
from test_browser import CHROMIUM, CHROMIUM_ARGS, WAIT_MS

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def docs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(tmp_path_factory.mktemp("docs")) as server:
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    need(Path(CHROMIUM).exists(), "chromium")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        yield launched
        launched.close()


def test_docs_render_offline_with_the_credential_schemes(
    docs_server: ServerProcess, browser: Browser, tmp_path: Path
) -> None:
    refused: list[str] = []

    def loopback_only(route: Route) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    context = browser.new_context(viewport={"width": 1280, "height": 1600})
    try:
        page = context.new_page()
        page.route("**/*", loopback_only)
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
