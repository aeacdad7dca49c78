"""The docs' examples hold: the code blocks of the how-to pages are run
against Tidings' real code, and the demo output the quickstart shows is what
the demo prints."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from support import free_port, need
from tidings.automation.webhook import deliver_webhook, new_secret

DOCS = Path(__file__).resolve().parents[2] / "docs"


def code_block(page: str, language: str, after: str) -> str:
    """The first ``language`` fenced block of ``page`` below the line ``after``."""
    text = (DOCS / page).read_text(encoding="utf-8")
    below = text[text.index(after + "\n") :]
    found = re.search(rf"```{language}\n(.*?)```", below, re.S)
    assert found, f"no {language} block under {after!r} in {page}"
    return found[1]


def python_receiver(secret: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, list[Any]]:
    """The Python receiver of verify-webhooks.md, with its two app hooks filled in."""
    monkeypatch.setenv("TIDINGS_WEBHOOK_SECRET", secret)
    handled: list[Any] = []
    seen: set[str] = set()

    def already_handled(webhook_id: str) -> bool:
        if webhook_id in seen:
            return True
        seen.add(webhook_id)
        return False

    namespace: dict[str, Any] = {"already_handled": already_handled, "handle": handled.append}
    source = code_block("howto/verify-webhooks.md", "python", "## Python")
    exec(compile(source, "verify-webhooks.md", "exec"), namespace)
    return namespace["app"], handled


async def deliver(app: Any, secrets: list[str], msg_id: str, event: dict[str, Any]) -> Any:
    """One delivery by Tidings' own webhook sender, into ``app`` in-process."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, timeout=30) as client:
        return await deliver_webhook(
            client,
            url="http://127.0.0.1/tidings",
            secrets=secrets,
            msg_id=msg_id,
            event_type=event["type"],
            data=event,
            allow_private=True,
        )


EVENT = {"id": "evt_1", "type": "qms.car.escalated", "tenantId": "acme", "entityId": "car-7"}


async def test_python_receiver_verifies_what_tidings_signs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret = new_secret()
    app, handled = python_receiver(secret, monkeypatch)
    outcome = await deliver(app, [secret], "job_1", EVENT)
    assert outcome.ok and outcome.status == 200, outcome
    assert handled == [EVENT]
    again = await deliver(app, [secret], "job_1", EVENT)  # a retry of the same job
    assert again.ok and handled == [EVENT]


async def test_python_receiver_refuses_another_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    app, handled = python_receiver(new_secret(), monkeypatch)
    outcome = await deliver(app, [new_secret()], "job_2", EVENT)
    assert not outcome.ok and outcome.status == 401, outcome
    assert handled == []


async def test_python_receiver_accepts_both_secrets_during_a_rotation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    old, new = new_secret(), new_secret()
    for held in (old, new):  # a receiver not yet updated, and one already updated
        app, handled = python_receiver(held, monkeypatch)
        outcome = await deliver(app, [new, old], "job_3", EVENT)
        assert outcome.ok and outcome.status == 200, outcome
        assert handled == [EVENT]


def test_quickstart_shows_what_the_demo_prints() -> None:
    from tidings.cli.demo import instructions

    printed = instructions(
        "http://127.0.0.1:8000", "admin-key", "jwt-secret-0123456789abcdef0123456789", "whsec_x"
    ).splitlines()
    shown = code_block("quickstart.md", "text", "## Run the demo").splitlines()
    assert len(shown) > 10
    for line in shown:
        # "..." in the page stands for what differs per run (tokens, keys, paths)
        pattern = ".*".join(re.escape(part) for part in line.split("..."))
        pattern = pattern.replace(re.escape(".venv/bin/tidings"), ".*")
        assert any(re.fullmatch(pattern, out) for out in printed), line


# -- the JavaScript receiver, in Node.js with the npm packages it names --------

RECEIVER_JS = Path(__file__).with_name("receiver-js")
JS_HOOKS = """
const seen = new Set();
const alreadyHandled = (id) => seen.has(id) || (seen.add(id), false);
const handle = (event) => console.log("HANDLED " + JSON.stringify(event));
"""


@pytest.fixture(scope="module")
def js_receiver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, Path]]:
    """The page's Express receiver running under Node on a loopback port:
    (url, the secret it holds, the file its stdout goes to)."""
    need(bool(shutil.which("node") and shutil.which("npm")), "node and npm")
    folder = tmp_path_factory.mktemp("receiver-js")
    for name in ("package.json", "package-lock.json"):
        shutil.copy(RECEIVER_JS / name, folder / name)
    install = subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=180,
    )
    need(install.returncode == 0, f"the npm registry (npm ci: {install.stderr.strip()[-300:]})")
    source = code_block("howto/verify-webhooks.md", "js", "## JavaScript (Node.js)")
    (folder / "receiver.mjs").write_text(JS_HOOKS + source, encoding="utf-8")
    secret, port = new_secret(), free_port()
    log = folder / "stdout.txt"
    environment = {**os.environ, "TIDINGS_WEBHOOK_SECRET": secret}
    environment.update(PORT=str(port), HOST="127.0.0.1")
    with log.open("w") as out:
        node = subprocess.Popen(["node", "receiver.mjs"], cwd=folder, stdout=out, env=environment)
    try:
        wait_for_port(port, node)
        yield f"http://127.0.0.1:{port}/tidings", secret, log
    finally:
        node.terminate()
        node.wait(timeout=10)


def wait_for_port(port: int, process: subprocess.Popen[Any], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the receiver exited with {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.1)
    raise AssertionError("the receiver did not listen in time")


async def deliver_to(url: str, secrets: list[str], msg_id: str) -> Any:
    async with httpx.AsyncClient(timeout=30) as client:
        return await deliver_webhook(
            client,
            url=url,
            secrets=secrets,
            msg_id=msg_id,
            event_type=EVENT["type"],
            data=EVENT,
            allow_private=True,
        )


async def test_js_receiver_verifies_what_tidings_signs(js_receiver: tuple[str, str, Path]) -> None:
    url, secret, log = js_receiver
    refused = await deliver_to(url, [new_secret()], "job_js_0")
    assert not refused.ok and refused.status == 401, refused
    rotated = await deliver_to(url, [new_secret(), secret], "job_js_1")  # during a rotation
    assert rotated.ok and rotated.status == 200, rotated
    again = await deliver_to(url, [secret], "job_js_1")  # the same job's retry
    assert again.ok, again
    handled = [line for line in log.read_text().splitlines() if line.startswith("HANDLED ")]
    assert [json.loads(line.removeprefix("HANDLED ")) for line in handled] == [EVENT]
