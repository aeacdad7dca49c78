"""No DNS-rebinding window for webhooks: the address checked is the address
connected to (``automation/webhook.py`` ``CheckedNetworkBackend``, policy in
``automation/urls.py``). The resolver is a seam the backend takes; the
connections, the HTTP client and the receivers are real."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpcore
import pytest
import trustme
from hypothesis import given, settings
from hypothesis import strategies as st

from receivers import ReceiverServer, WebhookReceiver
from support import Admin, ServerProcess, running_server, unique
from test_automation import completed, create, rule, wait_job, webhook, whsec
from tidings.automation.urls import UrlRefused, checked_addresses, is_public, literal_address
from tidings.automation.webhook import (
    CheckedNetworkBackend,
    RefusedConnect,
    deliver_webhook,
    webhook_client,
)

PUBLIC = "93.184.216.34"


class Answers:
    """A resolver that answers from a script, one answer per call (the last
    one repeats): a DNS server that rebinds between lookups."""

    def __init__(self, *answers: list[str]) -> None:
        self.answers = list(answers)
        self.calls: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append(host)
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


class LoopbackOnly(httpcore.AnyIOBackend):
    """Real connections to loopback; any other address is recorded and
    refused, so the tests never leave the machine."""

    def __init__(self) -> None:
        self.connected: list[str] = []

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.connected.append(host)
        address = literal_address(host)
        if address is None or is_public(address):
            raise httpcore.ConnectError(f"test: not connecting out to {host}")
        return await super().connect_tcp(host, port, timeout, local_address, socket_options)


@pytest.mark.parametrize(
    "answers",
    [
        [["127.0.0.1"]],
        [[PUBLIC, "127.0.0.1"]],  # one internal address among public ones
        [["::ffff:127.0.0.1"]],  # an IPv4-mapped loopback
        [["10.0.0.7"], [PUBLIC]],  # rebinding the other way round
        [["169.254.169.254"]],  # cloud metadata
    ],
)
async def test_a_name_resolving_to_an_internal_address_is_refused_unconnected(
    answers: list[list[str]],
) -> None:
    resolver, inner = Answers(*answers), LoopbackOnly()
    backend = CheckedNetworkBackend(allow_private=False, resolver=resolver, inner=inner)
    with pytest.raises(RefusedConnect) as refused:
        await backend.connect_tcp("hooks.example.com", 443)
    assert refused.value.problem.permanent and "resolves to" in str(refused.value)
    assert inner.connected == [] and resolver.calls == ["hooks.example.com"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.ip_addresses(), min_size=1, max_size=6))
def test_every_answer_is_checked_and_only_answers_are_returned(addresses: list[Any]) -> None:
    """Refused when any answer is internal; otherwise exactly the answers,
    in order (what the backend then connects to)."""
    resolver = Answers([str(a) for a in addresses])
    run = checked_addresses("any.example.com", 443, allow_private=False, resolver=resolver)
    try:
        found = asyncio.run(run)
    except UrlRefused as refused:
        assert refused.problem.permanent
        assert not all(is_public(a) for a in addresses)
    else:
        assert all(is_public(a) for a in addresses) and found == addresses
    allowed = asyncio.run(
        checked_addresses("any.example.com", 443, allow_private=True, resolver=resolver)
    )
    assert allowed == addresses


async def test_a_second_answer_cannot_move_a_checked_connection() -> None:
    """Public at the check, loopback afterwards: the connection goes to the
    public address that was checked (one lookup); the next connection looks
    up again and is refused."""
    resolver, inner = Answers([PUBLIC], ["127.0.0.1"]), LoopbackOnly()
    backend = CheckedNetworkBackend(allow_private=False, resolver=resolver, inner=inner)
    with pytest.raises(httpcore.ConnectError) as first:
        await backend.connect_tcp("rebind.example.com", 80)
    assert not isinstance(first.value, RefusedConnect)
    assert inner.connected == [PUBLIC] and len(resolver.calls) == 1
    with pytest.raises(RefusedConnect):
        await backend.connect_tcp("rebind.example.com", 80)
    assert inner.connected == [PUBLIC] and len(resolver.calls) == 2


async def test_the_request_goes_to_the_resolved_address_with_the_original_host(
    receiver: WebhookReceiver,
) -> None:
    """Allowed private targets still go through one lookup per connection: a
    made-up name the seam resolves to the receiver's address reaches it with
    its own Host header; when the next lookup answers an address nothing
    listens on, the next connection goes there (and fails), not to the
    receiver."""
    secret, name = whsec(), unique("pin")
    receiver.endpoint(name, secret)
    resolver = Answers(["127.0.0.1"], ["127.0.0.9"])
    url = f"http://hooks.internal.test:{receiver.port}/{name}"
    outcomes = []
    async with webhook_client(allow_private=True, resolver=resolver) as client:
        for n in range(2):  # the receiver closes each connection: two lookups
            outcomes.append(
                await deliver_webhook(
                    client,
                    url=url,
                    secrets=[secret],
                    msg_id=f"msg_{n}",
                    event_type="course.completed",
                    data={"n": n},
                    allow_private=True,
                )
            )
    assert outcomes[0].ok, outcomes[0]
    assert not outcomes[1].ok and outcomes[1].detail == "connection refused"
    (delivery,) = receiver.wait_for(name, 1)
    assert delivery.verified and delivery.headers["host"] == f"hooks.internal.test:{receiver.port}"
    assert resolver.calls == ["hooks.internal.test"] * 2


async def test_the_outcome_of_a_refused_delivery_is_permanent(receiver: WebhookReceiver) -> None:
    secret, name = whsec(), unique("refused")
    receiver.endpoint(name, secret)
    resolver = Answers(["127.0.0.1"])
    async with webhook_client(allow_private=False, resolver=resolver) as client:
        outcome = await deliver_webhook(
            client,
            url=f"http://hooks.example.com:{receiver.port}/{name}",
            secrets=[secret],
            msg_id="msg_1",
            event_type="course.completed",
            data={},
        )
    assert not outcome.ok and outcome.permanent
    assert "allow_private_webhooks" in outcome.detail and "127.0.0.1" in outcome.detail
    assert receiver.to(name) == []


def loopback_name() -> str:
    """This machine's host name, which resolves to loopback here (Debian's
    /etc/hosts): a name the save-time check cannot see through."""
    name = socket.gethostname()
    addresses = {info[4][0] for info in socket.getaddrinfo(name, 80, type=socket.SOCK_STREAM)}
    assert addresses and not any(is_public(ipaddress.ip_address(a)) for a in addresses)
    return name


def test_a_host_name_resolving_to_loopback_is_refused_by_the_server(
    tmp_path: Path, database_url: str, receiver: WebhookReceiver
) -> None:
    with running_server(tmp_path, database_url=database_url) as server:
        hub = Admin(server.url)
        tenant, secret, name = hub.tenant(), whsec(), unique("rebind")
        receiver.endpoint(name, secret)
        url = f"http://{loopback_name()}:{receiver.port}/{name}"
        created = create(hub, rule(tenant, webhook(url, secret)))  # not visibly internal
        hub.publish(completed(tenant)).raise_for_status()
        job = wait_job(hub, created["id"], "dead")
        assert "allow_private_webhooks" in job["attempts"][0]["detail"]
        assert receiver.to(name) == []
        hub.close()


def test_with_private_webhooks_allowed_localhost_reaches_the_receiver(
    automation_server: ServerProcess, receiver: WebhookReceiver
) -> None:
    hub = Admin(automation_server.url)
    tenant, secret, name = hub.tenant(), whsec(), unique("local")
    url = receiver.endpoint(name, secret).replace("127.0.0.1", "localhost")
    created = create(hub, rule(tenant, webhook(url, secret)))
    hub.publish(completed(tenant)).raise_for_status()
    wait_job(hub, created["id"], "succeeded")
    (delivery,) = receiver.wait_for(name, 1)
    assert delivery.verified and delivery.headers["host"] == f"localhost:{receiver.port}"
    hub.close()


class TLSReceiver:
    """An HTTPS endpoint on loopback with a certificate for ``name`` from a
    test CA (trustme): records the SNI each handshake asked for and the Host
    header of each request."""

    def __init__(self, ca: Any, name: str) -> None:
        self.sni: list[str | None] = []
        self.hosts: list[str] = []
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert(name).configure_cert(context)
        context.sni_callback = lambda _sock, server_name, _ctx: self.sni.append(server_name)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", 0)))
                receiver.hosts.append(self.headers["host"])
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ReceiverServer(("127.0.0.1", 0), Handler)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("certified", ["hooks.internal.test", "other.internal.test"])
async def test_tls_sni_and_certificate_are_for_the_original_host(certified: str) -> None:
    """Connected to the checked IP, the TLS handshake still names the URL's
    host (SNI) and its certificate must be valid for that name: a
    certificate for another name fails the delivery, nothing is posted."""
    ca = trustme.CA()
    endpoint = TLSReceiver(ca, certified)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    try:
        async with webhook_client(
            allow_private=True, resolver=Answers(["127.0.0.1"]), verify=client_context
        ) as client:
            outcome = await deliver_webhook(
                client,
                url=f"https://hooks.internal.test:{endpoint.port}/tls",
                secrets=[whsec()],
                msg_id="msg_tls",
                event_type="course.completed",
                data={},
                allow_private=True,
            )
    finally:
        endpoint.close()
    assert endpoint.sni == ["hooks.internal.test"]
    if certified == "hooks.internal.test":
        assert outcome.ok, outcome
        assert endpoint.hosts == [f"hooks.internal.test:{endpoint.port}"]
    else:
        assert not outcome.ok and "certificate" in outcome.detail.lower(), outcome
        assert endpoint.hosts == []
