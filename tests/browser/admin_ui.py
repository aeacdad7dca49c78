"""Support for the Integration Manager's browser tests: a logged-in page in
Debian's Chromium that records script errors and refused requests, and
screenshots saved as artefacts.

Screenshots go to ``$TIDINGS_SCREENSHOTS`` (default ``<repo>/artifacts/
screenshots``, ignored by git): CI keeps them, people look at them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page

from chromium import chromium, record_off_loopback
from support import ADMIN_KEY, ServerProcess, running_server
from test_browser import WAIT_MS

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(os.environ.get("TIDINGS_SCREENSHOTS", REPO / "artifacts" / "screenshots"))


@dataclass
class AdminTab:
    """A page of one browser context, logged in, and what went wrong in it."""

    page: Page
    url: str
    errors: list[str] = field(default_factory=list)  # uncaught script errors
    refused: list[str] = field(default_factory=list)  # requests that left loopback

    def open(self, path: str) -> Page:
        self.page.goto(self.url + path)
        return self.page

    def shot(self, name: str, *, full_page: bool = True) -> Path:
        """Save a screenshot ``<name>.png`` among the artefacts."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        if full_page:  # from the top: the sticky top bar would be drawn mid-page
            self.page.evaluate("() => window.scrollTo(0, 0)")
        self.page.screenshot(path=str(path), full_page=full_page)
        return path

    def assert_clean(self) -> None:
        assert not self.errors, self.errors
        assert not self.refused, self.refused


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


def new_tab(browser: Browser, url: str) -> tuple[BrowserContext, AdminTab]:
    """A fresh context (no cookies) whose requests may reach loopback only."""
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    tab = AdminTab(page=page, url=url)
    page.on("pageerror", lambda error: tab.errors.append(str(error)))
    record_off_loopback(page, tab.refused)
    page.set_default_timeout(WAIT_MS)
    return context, tab


def log_in(tab: AdminTab, key: str = ADMIN_KEY, then: str = "/admin") -> AdminTab:
    """Log in through the form, as a person would; lands on ``then``."""
    tab.open(f"/admin/login?next={then}")
    tab.page.fill("input[name=key]", key)
    tab.page.click("button[type=submit]")
    tab.page.wait_for_url(lambda url: url == tab.url + then, timeout=WAIT_MS)
    return tab


@pytest.fixture(scope="module")
def ui_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server of the module's own, on SQLite (a module that needs other
    settings defines its own ``ui_server``)."""
    with running_server(tmp_path_factory.mktemp("admin-ui")) as server:
        yield server


@pytest.fixture
def ui_server_url(ui_server: ServerProcess) -> str:
    return ui_server.url


@pytest.fixture
def admin_tab(browser: Browser, ui_server_url: str) -> Iterator[AdminTab]:
    """A logged-in tab on ``ui_server_url`` (the module's ``ui_server``),
    checked clean after."""
    context, tab = new_tab(browser, ui_server_url)
    try:
        yield log_in(tab)
        tab.assert_clean()
    finally:
        context.close()
