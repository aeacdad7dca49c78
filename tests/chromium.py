"""Debian's Chromium for the browser tests (never a downloaded browser), in
one place: its path, the flags DEVELOPERS.md prescribes, and the loopback
fence.

The fence is a proxy that does not exist: Chromium sends every request
that is not to loopback through ``127.0.0.1:9`` (nothing listens there), so
it fails, while loopback bypasses proxies by Chromium's own rule. It used
to be a Playwright route on every page, but a route pauses each request
until Python answers it, and a context closed while requests were paused
could hang its ``close()`` for good (seen in CI). Requests off loopback
are still recorded, so a test can say what tried to leave."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from playwright.sync_api import Browser, Page, Request, sync_playwright

from support import need

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
LOOPBACK_FENCE = "--proxy-server=http://127.0.0.1:9"


@contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's Chromium, headless, fenced to loopback; closed after."""
    need(Path(CHROMIUM).exists(), "chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=[*CHROMIUM_FLAGS, LOOPBACK_FENCE], headless=True
        )
        try:
            yield browser
        finally:
            browser.close()


def record_off_loopback(page: Page, refused: list[str]) -> None:
    """Append to ``refused`` the URL of every request ``page`` makes that is
    not to 127.0.0.1 (the fence makes each of them fail)."""

    def check(request: Request) -> None:
        url = urlsplit(request.url)
        if url.scheme in {"http", "https", "ws", "wss"} and url.hostname != "127.0.0.1":
            refused.append(request.url)

    page.on("request", check)
