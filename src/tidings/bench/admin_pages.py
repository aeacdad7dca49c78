"""Operators watching while a scenario runs (``tidings bench --admin-pages N``):
N real browsers (Debian's Chromium, driven by Playwright), each logged in
to the Integration Manager with the live log (``/admin/log``) and the
health page (``/admin``) open, both updating live, for as long as the
scenario runs. The report sets the scenario with them beside the same
scenario without them (ratio = with / without).

The browsers run in their own process (``python -m
tidings.bench.admin_pages URL KEY N``), on the client's core and niced, so
what is measured is what their requests cost the hub, not their rendering
competing with the client. Playwright and ``/usr/bin/chromium`` are needed
only for this option (``pip install 'tidings[bench]'``, Debian's
``chromium``).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
PAGES = ("/admin/log", "/admin")
READY = "ready"
NICENESS = 10
START_TIMEOUT_S = 120.0


def missing() -> str | None:
    """Why ``--admin-pages`` cannot run here (None: it can)."""
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "--admin-pages needs Playwright (pip install 'tidings[bench]')"
    if not Path(CHROMIUM).exists():
        return f"--admin-pages needs Chromium at {CHROMIUM} (Debian: apt install chromium)"
    return None


@contextlib.contextmanager
def watching(url: str, key: str, browsers: int, log_path: Path) -> Iterator[None]:
    """``browsers`` browsers on ``url``'s admin pages until the block ends."""
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tidings.bench.admin_pages", url, key, str(browsers)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
        )
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline().decode().strip()
            if line != READY:
                proc.kill()
                proc.wait()
                raise RuntimeError(f"admin pages did not open: {log_path.read_text()[-1500:]}")
            yield
        finally:
            if proc.poll() is None:
                assert proc.stdin is not None
                proc.stdin.close()  # the watcher closes its browsers and exits
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def watch(url: str, key: str, browsers: int) -> None:
    """Open the pages, say ``ready`` on stdout, keep them until stdin closes."""
    from playwright.sync_api import sync_playwright

    os.nice(NICENESS)  # inherited by the browsers
    with sync_playwright() as playwright:
        opened = []
        for _ in range(browsers):
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
            )
            opened.append(browser)
            context = browser.new_context()
            login = context.new_page()
            login.goto(f"{url}/admin/login", timeout=START_TIMEOUT_S * 1000)
            login.fill("input[name=key]", key)
            login.click("button[type=submit]")
            login.wait_for_url(f"{url}/admin", timeout=START_TIMEOUT_S * 1000)
            login.close()
            for path in PAGES:
                context.new_page().goto(url + path, timeout=START_TIMEOUT_S * 1000)
        print(READY, flush=True)
        sys.stdin.read()  # until the runner closes it
        for browser in opened:
            browser.close()


if __name__ == "__main__":
    watch(sys.argv[1], sys.argv[2], int(sys.argv[3]))
