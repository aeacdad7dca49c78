"""Operators watching while a scenario runs (``tidings bench --admin-pages N``):
N real browsers (Debian's Chromium, driven by Playwright), each logged in
to the Integration Manager with the live log (``/admin/log``) and the
health page (``/admin``) open, both updating live, for as long as the
scenario runs. The report sets the scenario with them beside the same
scenario without them (ratio = with / without).

The browsers run in their own process (``python -m
tidings.bench.admin_pages URL KEY N``) on the client's core under
``SCHED_IDLE`` (they get that core only when the client leaves it idle):
on a two-core machine that is the nearest to operators' browsers on other
machines, so what is measured is what their requests cost the hub, not
their rendering competing with the client. The watcher counts the pages'
requests and says how many were answered, so a run in which the pages did
not poll is visible. Playwright and ``/usr/bin/chromium`` are needed
only for this option (``pip install 'tidings[bench]'``, Debian's
``chromium``).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
PAGES = ("/admin/log", "/admin")
PATHS_ENV = "TIDINGS_BENCH_ADMIN_PATHS"  # other pages to keep open (comma list)
READY = "ready"
RENICE_EVERY_S = 2.0
POLLED = ("/admin/log/tail", "/admin/health/series", "/admin/health/panel")
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
def watching(url: str, key: str, browsers: int, log_path: Path) -> Iterator[dict[str, int]]:
    """``browsers`` browsers on ``url``'s admin pages until the block ends;
    the dict it gives is filled then with the live requests answered, by
    path."""
    answered: dict[str, int] = {}
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
            yield answered
        finally:
            if proc.poll() is None:
                assert proc.stdin is not None
                proc.stdin.close()  # the watcher closes its browsers and exits
                with contextlib.suppress(ValueError, json.JSONDecodeError):
                    answered.update(json.loads(proc.stdout.readline()))  # type: ignore[union-attr]
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def watch(url: str, key: str, browsers: int) -> None:
    """Open the pages, say ``ready`` on stdout, keep them until stdin
    closes, then print the live requests answered by path (JSON)."""
    from playwright.sync_api import Response, sync_playwright

    with contextlib.suppress(AttributeError, OSError):  # inherited by the browsers
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    answered: dict[str, int] = dict.fromkeys(POLLED, 0)

    def count(response: Response) -> None:
        path = urlsplit(response.url).path
        if path in answered and response.ok:
            answered[path] += 1

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
            for path in os.environ.get(PATHS_ENV, ",".join(PAGES)).split(","):
                page = context.new_page()
                page.on("response", count)
                page.goto(url + path, timeout=START_TIMEOUT_S * 1000)
        print(READY, flush=True)
        reniced = 0.0
        while not select.select([sys.stdin], [], [], 0)[0]:  # until the runner closes it
            if time.monotonic() - reniced >= RENICE_EVERY_S:  # a /proc walk: not every turn
                _lowest_group_shares()  # renderers start in new sessions as pages need them
                reniced = time.monotonic()
            page.wait_for_timeout(250)  # lets Playwright deliver the response events
        for browser in opened:
            browser.close()
    print(json.dumps(answered), flush=True)


def _descendants(root: int) -> list[int]:
    """The processes below ``root`` (the driver, the browsers, their renderers)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                stat = (entry / "stat").read_text()
                parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [], [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent]
        found += children
        frontier += children
    return found


def _lowest_group_shares() -> None:
    """Chromium starts its browser and zygote processes in sessions of their
    own, and Linux's autogroup gives each session a core share equal to the
    client's, whatever the processes' own policy (measured: the client got
    half its core, s3 fell to about half). So the groups of the browsers'
    processes, not this process's own (the runner and client are in it),
    are niced to 19."""
    own = _group(os.getpid())
    for pid in _descendants(os.getpid()):
        if _group(pid) not in (own, None, "19"):
            with contextlib.suppress(OSError):
                Path(f"/proc/{pid}/autogroup").write_text("19")


def _group(pid: int) -> str | None:
    """``pid``'s autogroup name, or "19" once it is niced (None: unknown)."""
    try:
        name, _, nice = Path(f"/proc/{pid}/autogroup").read_text().split()
    except (OSError, ValueError):
        return None
    return "19" if nice == "19" else name


if __name__ == "__main__":
    watch(sys.argv[1], sys.argv[2], int(sys.argv[3]))
