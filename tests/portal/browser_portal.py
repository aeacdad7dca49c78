"""Support for the portal's browser tests: Debian's Chromium (never a
downloaded browser), one signed-in tab per person, each recording script
errors, requests that would leave loopback and the API requests it made,
and screenshots saved as artefacts (``$TIDINGS_SCREENSHOTS``, default
``<repo>/artifacts/screenshots``, ignored by git).

A test module imports ``browser_fixture`` and ``people_fixture`` to get the
``browser`` and ``people`` fixtures."""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Request

from chromium import chromium, record_off_loopback
from portal_server import DEMO_PASSWORD, PortalServer

WAIT_MS = 20_000  # generous: four helpers share two cores
REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(os.environ.get("TIDINGS_SCREENSHOTS", REPO / "artifacts" / "screenshots"))
# The page each role lands on after signing in.
LANDING = {
    "tenant@example.com": "/tickets",
    "landlord@example.com": "/maintenance",
    "contractor@example.com": "/jobs",
    "ops@example.com": "/ops",
}


@dataclass
class Tab:
    """One person's page (its own browser context) and what happened in it."""

    page: Page
    url: str
    errors: list[str] = field(default_factory=list)  # uncaught errors, console errors
    refused: list[str] = field(default_factory=list)  # requests that left loopback
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, path) of /api

    def open(self, path: str) -> Page:
        self.page.goto(self.url + path)
        return self.page

    def wait_live(self) -> None:
        """Until the page's stream is connected (tidings.js status)."""
        self.page.wait_for_selector('body[data-live="connected"]', state="attached")

    def mark_document(self) -> None:
        """Tag the loaded document, so ``assert_not_reloaded`` can tell."""
        self.page.evaluate("() => { window.__portalTestMark = 'same-document'; }")

    def assert_not_reloaded(self) -> None:
        assert self.page.evaluate("() => window.__portalTestMark") == "same-document"

    def events_seen(self) -> int:
        """How many log events the page's stream has delivered."""
        return int(self.page.evaluate("() => Number(document.body.dataset.liveEvents || 0)"))

    def wait_events(self, more_than: int) -> None:
        self.page.wait_for_function(
            "n => Number(document.body.dataset.liveEvents || 0) > n", arg=more_than
        )

    def count(self, method: str, path: str, since: int = 0) -> int:
        return Counter(self.requests[since:])[(method, path)]

    def shot(self, name: str) -> Path:
        """Save ``portal-<name>.png`` among the artefacts (full page, from the top)."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"portal-{name}.png"
        self.page.evaluate("() => window.scrollTo(0, 0)")
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def assert_clean(self) -> None:
        assert not self.errors, self.errors
        assert not self.refused, self.refused


@pytest.fixture(scope="module", name="browser")
def browser_fixture() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


def new_tab(browser: Browser, url: str) -> tuple[BrowserContext, Tab]:
    """A fresh context (its own sessionStorage) whose requests may reach
    loopback only."""
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    tab = Tab(page=page, url=url)
    page.on("pageerror", lambda error: tab.errors.append(str(error)))
    page.on(
        "console",
        lambda message: (
            tab.errors.append(f"console: {message.text}") if message.type == "error" else None
        ),
    )

    def record(request: Request) -> None:
        path = urlsplit(request.url).path
        if path.startswith("/api/"):
            tab.requests.append((request.method, path))

    page.on("request", record)
    record_off_loopback(page, tab.refused)
    page.set_default_timeout(WAIT_MS)
    return context, tab


def sign_in(tab: Tab, email: str, then: str | None = None) -> Tab:
    """Sign in through the login form, as a person would; the tab lands on
    the role's page (or ``then``)."""
    tab.open("/login" + (f"?next={then}" if then else ""))
    tab.page.fill('[name="email"]', email)
    tab.page.fill('[name="password"]', DEMO_PASSWORD)
    tab.page.click('button[type="submit"]')
    landing = then or LANDING.get(email)
    if landing:
        tab.page.wait_for_url(tab.url + landing)
    tab.wait_live()
    return tab


@pytest.fixture(name="people")
def people_fixture(browser: Browser, portal: PortalServer) -> Iterator[Callable[[str], Tab]]:
    """``people(email)``: a new signed-in tab for that demo account; every
    tab is checked clean (no script error, nothing off loopback) after."""
    opened: list[tuple[BrowserContext, Tab]] = []

    def open_as(email: str, then: str | None = None) -> Tab:
        context, tab = new_tab(browser, portal.url)
        opened.append((context, tab))
        return sign_in(tab, email, then)

    yield open_as
    try:
        for _context, tab in opened:
            tab.assert_clean()
    finally:
        for context, _tab in opened:
            context.close()


def wait_until(tab: Tab, check: Callable[[], bool], timeout: float = WAIT_MS / 1000) -> None:
    """Poll ``check`` while ``tab``'s page runs (Playwright delivers its
    events, such as requests, only while it is called)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        tab.page.wait_for_timeout(100)


def hub_events(portal: PortalServer, tenant: str, **filters: str) -> list[dict[str, object]]:
    """The hub's log (admin key), oldest first, filtered like /api/events/log."""
    answer = httpx.get(
        f"{portal.url}/api/events/log",
        params={"tenantId": tenant, "order": "asc", "limit": "500", **filters},
        headers={"Authorization": f"Bearer {portal.admin_key}"},
        timeout=30,
    )
    answer.raise_for_status()
    items: list[dict[str, object]] = answer.json()["items"]
    return items
