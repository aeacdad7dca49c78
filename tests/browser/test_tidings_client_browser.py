"""tidings.mjs, the ES module, in Debian's Chromium against real servers: a
page at the hub's origin imports it from ``/static/``; it reconnects after
a real restart (SIGTERM or SIGKILL, same port and database) no sooner than
the server's ``retry`` and resumes without loss; it falls back to the
WebSocket when EventSource is missing or its requests fail; and
``useTidings`` drives React Query (the portal's vendored React and React
Query) from the stream.

The test page is the hub's own ``/live`` page (its strict CSP in force),
idle without a token; the tests import the module into it. Only the hook's
test borrows a file the hub does not serve: the portal's vendored React and
React Query bundle, fulfilled by Playwright from the repository.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Request

from support import ADMIN_KEY, Admin, ServerProcess, running_server, unique
from test_browser import WAIT_MS, car
from tidings.sdk import TidingsClient

pytestmark = pytest.mark.browser

RETRY_MS = 1500  # the servers' retry: long enough to tell "waited" from "did not"
MAX_DELAY_MS = 3000  # the page's backoff cap: bounded waits while a server starts
RESTART_WAIT_MS = 90_000  # a server may take up to 60 s to start on a loaded machine
# A real page of the hub, served under its strict CSP; without a token in its
# address it stays idle, and the tests import the module into it.
TEST_PAGE = "/live"
VENDOR = Path(__file__).resolve().parents[2] / "src/tidings/portal/static/vendor/portal-vendor.js"
HARNESS = """async ({token, options}) => {
  const { connect } = await import("/static/tidings.mjs");
  const log = (window.log = { statuses: [], events: [], errors: [] });
  window.live = connect({
    token, minDelay: 200, maxDelay: MAX_DELAY, ...options,
    onStatus: (status, detail) => log.statuses.push({
      status, reason: detail.reason ?? null, delay: detail.delay ?? null,
      transport: detail.transport ?? null, at: performance.now() }),
    onEvent: (event) => log.events.push(
      { position: event.position, entityId: event.entityId, type: event.type }),
    onError: (error) => log.errors.push(String(error)),
  });
}""".replace("MAX_DELAY", str(MAX_DELAY_MS))


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(
        tmp_path_factory.mktemp("client"), env={"TIDINGS_RETRY_MS": str(RETRY_MS)}
    ) as server:
        yield server


@pytest.fixture
def restartable(tmp_path: Path) -> Iterator[ServerProcess]:
    with running_server(tmp_path, env={"TIDINGS_RETRY_MS": str(RETRY_MS)}) as server:
        yield server


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    opened = browser.new_context()
    opened.set_default_timeout(WAIT_MS)
    yield opened
    opened.close()


def open_client(context: BrowserContext, server: ServerProcess, token: str, **options: Any) -> Page:
    page = context.new_page()
    page.goto(server.url + TEST_PAGE)
    page.evaluate(HARNESS, {"token": token, "options": options})
    return page


def wait_status(
    page: Page, status: str, after: int = 0, timeout: float = WAIT_MS
) -> dict[str, Any]:
    """The first status ``status`` at index >= ``after`` (and its index)."""
    page.wait_for_function(
        "([status, after]) => log.statuses.slice(after).some((s) => s.status === status)",
        arg=[status, after],
        timeout=timeout,
    )
    statuses = page.evaluate("log.statuses")
    index = next(i for i in range(after, len(statuses)) if statuses[i]["status"] == status)
    return {**statuses[index], "index": index}


def wait_events(page: Page, count: int, timeout: float = WAIT_MS) -> list[dict[str, Any]]:
    page.wait_for_function("(n) => log.events.length >= n", arg=count, timeout=timeout)
    return list(page.evaluate("log.events"))


def reader(server: ServerProcess) -> tuple[str, str]:
    admin = Admin(server.url)
    try:
        tenant = admin.tenant()
        return tenant, admin.user(tenant, unique("u"), grant=["qms.read"])
    finally:
        admin.close()


def publish(server: ServerProcess, tenant: str, entity: str) -> int:
    with TidingsClient(server.url, token=ADMIN_KEY, max_retries=10) as client:
        return int(client.publish(car(tenant, entity))["position"])


def test_the_hub_serves_the_client_files_with_their_media_types(hub: ServerProcess) -> None:
    expected = {
        "tidings.mjs": "text/javascript",
        "tidings.js": "text/javascript",
        "tidings.d.ts": "text/typescript",
        "package.json": "application/json",
    }
    for name, media_type in expected.items():
        answer = httpx.get(f"{hub.url}/static/{name}", timeout=10)
        assert answer.status_code == 200, name
        assert answer.headers["content-type"].split(";")[0] == media_type, name


def test_the_module_imports_and_receives_events(
    hub: ServerProcess, context: BrowserContext
) -> None:
    tenant, token = reader(hub)
    page = open_client(context, hub, token)
    connected = wait_status(page, "connected")
    assert connected["transport"] == "sse"
    exported = page.evaluate("import('/static/tidings.mjs').then((m) => Object.keys(m).sort())")
    assert exported == ["DEFAULT_QUERY_KEYS", "connect", "keysFor", "useTidings"]
    assert page.evaluate("live.retry") == RETRY_MS  # said by the server's connected message
    position = publish(hub, tenant, "car-module")
    (event,) = wait_events(page, 1)
    assert event == {"position": position, "entityId": "car-module", "type": "qms.car.updated"}
    assert page.evaluate("live.lastEventId") == str(position)


@pytest.mark.parametrize(
    ("transport", "how"),
    [("sse", "stop"), ("sse", "kill"), ("websocket", "stop")],
)
def test_a_restart_waits_for_the_server_retry_and_resumes_without_loss(
    restartable: ServerProcess, context: BrowserContext, transport: str, how: str
) -> None:
    server = restartable
    tenant, token = reader(server)
    page = open_client(context, server, token, transport=transport)
    wait_status(page, "connected")
    before = publish(server, tenant, "before")
    wait_events(page, 1)
    mark = len(page.evaluate("log.statuses"))

    assert server.log_path is not None
    if how == "stop":
        server.stop()  # SIGTERM: streams are told to reconnect, with a jittered retry
    else:
        server.kill()  # SIGKILL: the connection just drops
    dropped = wait_status(page, "reconnecting", after=mark)
    server.start(server.log_path)  # the same port and database
    # Published maybe before the page is back: the resume replays them.
    during = [publish(server, tenant, f"after-{n}") for n in range(3)]
    events = wait_events(page, 4, timeout=RESTART_WAIT_MS)
    wait_status(page, "connected", after=dropped["index"], timeout=RESTART_WAIT_MS)

    assert [event["position"] for event in events] == [before, *during]  # no loss, no repeat
    statuses = page.evaluate("log.statuses")[dropped["index"] :]
    assert dropped["reason"] == ("shutdown" if how == "stop" else "connection_lost")
    waits = [s for s in statuses if s["status"] == "reconnecting"]
    # Every wait honours the server's retry, and stays bounded.
    assert all(RETRY_MS <= s["delay"] <= max(1.5 * MAX_DELAY_MS, 2 * RETRY_MS) for s in waits)
    # Not before the retry: the next attempt started no sooner than it said.
    attempt = next(s for s in statuses if s["status"] == "connecting")
    assert attempt["at"] - dropped["at"] >= dropped["delay"] - 1, (dropped, attempt)
    assert page.evaluate("[live.transport, live.retry]") == [transport, RETRY_MS]


def sse_requests(page: Page) -> list[str]:
    """The stream requests over SSE the page makes (GET /api/events)."""
    seen: list[str] = []

    def note(request: Request) -> None:
        if urlsplit(request.url).path == "/api/events" and request.method == "GET":
            seen.append(request.url)

    page.on("request", note)
    return seen


def test_without_event_source_it_uses_the_websocket(
    hub: ServerProcess, context: BrowserContext
) -> None:
    tenant, token = reader(hub)
    context.add_init_script("delete window.EventSource;")
    page = context.new_page()
    requested = sse_requests(page)
    page.goto(hub.url + TEST_PAGE)
    assert page.evaluate("typeof EventSource") == "undefined"
    page.evaluate(HARNESS, {"token": token, "options": {}})
    assert wait_status(page, "connected")["transport"] == "websocket"
    positions = [publish(hub, tenant, f"ws-{n}") for n in range(2)]
    assert [event["position"] for event in wait_events(page, 2)] == positions
    assert requested == []


def test_when_sse_requests_fail_it_falls_back_to_the_websocket(
    hub: ServerProcess, context: BrowserContext
) -> None:
    tenant, token = reader(hub)
    page = context.new_page()
    requested = sse_requests(page)
    page.route(lambda url: urlsplit(url).path == "/api/events", lambda route: route.abort())
    page.goto(hub.url + TEST_PAGE)
    page.evaluate(HARNESS, {"token": token, "options": {}})
    connected = wait_status(page, "connected")
    assert connected["transport"] == "websocket"
    before = page.evaluate("log.statuses")[: connected["index"]]
    reasons = [s["reason"] for s in before if s["status"] == "reconnecting"]
    assert reasons == ["connection_lost", "sse_unavailable"]  # two SSE failures, then WS
    assert len(requested) == 2
    position = publish(hub, tenant, "ws-fallback")
    assert [event["position"] for event in wait_events(page, 1)] == [position]


HOOK_PAGE = """async ({token}) => {
  const V = await import("/vendor/portal-vendor.js");
  const { useTidings } = await import("/static/tidings.mjs");
  const fetches = (window.fetches = { cars: 0, other: 0 });
  const client = new V.QueryClient({ defaultOptions: { queries: { staleTime: Infinity } } });
  function Cars() {
    const status = useTidings({
      react: V, queryClient: V.useQueryClient(), token, minDelay: 200,
      queryKeys: { "qms.car.": (event) => [["cars", event.entityId]] },
    });
    const cars = V.useQuery({ queryKey: ["cars", "car-hook"],
                              queryFn: async () => ++fetches.cars });
    const other = V.useQuery({ queryKey: ["cars", "another"],
                               queryFn: async () => ++fetches.other });
    return V.html`<p id="status" data-status=${status}>${status}</p>
                  <p id="cars">${cars.data}</p><p id="other">${other.data}</p>`;
  }
  const app = document.createElement("div");
  document.body.append(app);
  V.createRoot(app).render(
    V.html`<${V.QueryClientProvider} client=${client}><${Cars} /></${V.QueryClientProvider}>`);
}"""


def test_use_tidings_invalidates_react_query_keys(
    hub: ServerProcess, context: BrowserContext
) -> None:
    tenant, token = reader(hub)
    page = context.new_page()
    page.route("**/vendor/portal-vendor.js", lambda route: route.fulfill(path=VENDOR))
    page.goto(hub.url + TEST_PAGE)
    page.evaluate(HOOK_PAGE, {"token": token})
    page.wait_for_selector('#status[data-status="connected"]')
    page.wait_for_function("fetches.cars === 1 && fetches.other === 1")
    publish(hub, tenant, "car-hook")  # invalidates ["cars", "car-hook"] only
    page.wait_for_function("fetches.cars === 2")
    page.wait_for_selector('#cars:text("2")')
    assert page.evaluate("fetches.other") == 1
