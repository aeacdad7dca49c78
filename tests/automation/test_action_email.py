"""The email action against a real SMTP server (aiosmtpd on loopback)."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from support import free_port
from tidings.automation.email import SmtpSettings, send_email, validate_addresses
from tidings.errors import InvalidInput


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


@dataclass
class Handler:
    """Accepts mail, except for recipients whose local part says otherwise:
    ``bounce@`` gets 550, ``later@`` gets 451."""

    received: list[Received] = field(default_factory=list)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address.startswith("bounce@"):
            return "550 5.1.1 no such user"
        if address.startswith("later@"):
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 2.0.0 queued as 42"


@pytest.fixture(scope="module")
def smtp_server() -> Iterator[tuple[Handler, SmtpSettings]]:
    handler = Handler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, SmtpSettings(host="127.0.0.1", port=port, timeout=5.0)
    finally:
        controller.stop()


async def test_sends_text_and_html(smtp_server: tuple[Handler, SmtpSettings]) -> None:
    handler, smtp = smtp_server
    handler.received.clear()
    outcome = await send_email(
        smtp,
        sender="Tidings <noreply@example.org>",
        to=["ada@example.org", '"Doe, Jane" <jane@example.org>'],
        subject="CAPA-7 created\n(urgent)",
        body="Fix the pump.\n",
        html="<p>Fix the <b>pump</b>.</p>",
        message_id="job_01HXYZ",
        headers={"X-Tidings-Rule": "r1", "Bcc": "spy@example.org", "Reply-To": "qa@example.org"},
    )
    assert outcome.ok, outcome
    assert outcome.status == 250
    assert outcome.detail == "250 2.0.0 queued as 42"
    [got] = handler.received
    assert got.mail_from == "noreply@example.org"
    assert got.rcpt_tos == ["ada@example.org", "jane@example.org"]
    message = got.message
    assert message["From"] == "Tidings <noreply@example.org>"
    assert message["Subject"] == "CAPA-7 created (urgent)"
    assert message["Message-ID"] == "<job_01HXYZ@example.org>"
    assert message["X-Tidings-Rule"] == "r1"
    assert message["Reply-To"] == "qa@example.org"
    assert message["Bcc"] is None
    assert [a.addr_spec for a in message["To"].addresses] == [
        "ada@example.org",
        "jane@example.org",
    ]
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    assert text.get_content().replace("\r\n", "\n") == "Fix the pump.\n"
    assert html.get_content().strip() == "<p>Fix the <b>pump</b>.</p>"


async def test_same_job_same_message_id(smtp_server: tuple[Handler, SmtpSettings]) -> None:
    handler, smtp = smtp_server
    handler.received.clear()
    for _ in range(2):
        outcome = await send_email(
            SmtpSettings(host=smtp.host, port=smtp.port, default_sender="hub@example.org"),
            sender=None,
            to=["ada@example.org"],
            subject="s",
            body="b",
            message_id="<job_2@tidings.example>",
        )
        assert outcome.ok
    ids = [r.message["Message-ID"] for r in handler.received]
    assert ids == ["<job_2@tidings.example>"] * 2
    assert handler.received[0].message.get_content_type() == "text/plain"
    assert handler.received[0].mail_from == "hub@example.org"


async def test_550_is_permanent(smtp_server: tuple[Handler, SmtpSettings]) -> None:
    _handler, smtp = smtp_server
    outcome = await send_email(
        smtp,
        sender="noreply@example.org",
        to=["bounce@example.org"],
        subject="s",
        body="b",
        message_id="job_3",
    )
    assert not outcome.ok and outcome.permanent
    assert outcome.status == 550
    assert "no such user" in outcome.detail and "\n" not in outcome.detail


async def test_451_is_retryable(smtp_server: tuple[Handler, SmtpSettings]) -> None:
    _handler, smtp = smtp_server
    outcome = await send_email(
        smtp,
        sender="noreply@example.org",
        to=["later@example.org"],
        subject="s",
        body="b",
        message_id="job_4",
    )
    assert not outcome.ok and not outcome.permanent
    assert outcome.status == 451


async def test_partial_refusal_is_sent(smtp_server: tuple[Handler, SmtpSettings]) -> None:
    handler, smtp = smtp_server
    handler.received.clear()
    outcome = await send_email(
        smtp,
        sender="noreply@example.org",
        to=["ada@example.org", "bounce@example.org"],
        subject="s",
        body="b",
        message_id="job_5",
    )
    assert outcome.ok
    assert "refused: bounce@example.org 550" in outcome.detail
    assert handler.received[0].rcpt_tos == ["ada@example.org"]


async def test_nothing_listening_is_retryable() -> None:
    smtp = SmtpSettings(host="127.0.0.1", port=free_port(), timeout=2.0)
    outcome = await send_email(
        smtp,
        sender="noreply@example.org",
        to=["ada@example.org"],
        subject="s",
        body="b",
        message_id="job_6",
    )
    assert not outcome.ok and not outcome.permanent
    assert outcome.detail == f"connection refused by 127.0.0.1:{smtp.port}"


async def test_without_sender_is_permanent(smtp_server: tuple[Handler, SmtpSettings]) -> None:
    _handler, smtp = smtp_server
    outcome = await send_email(
        smtp, sender=None, to=["ada@example.org"], subject="s", body="b", message_id="job_7"
    )
    assert not outcome.ok and outcome.permanent


async def test_header_injection_is_refused(smtp_server: tuple[Handler, SmtpSettings]) -> None:
    _handler, smtp = smtp_server
    outcome = await send_email(
        smtp,
        sender="noreply@example.org",
        to=["ada@example.org"],
        subject="s",
        body="b",
        message_id="job_8",
        headers={"X-Note": "a\r\nBcc: spy@example.org"},
    )
    assert not outcome.ok and outcome.permanent


def test_from_url() -> None:
    smtp = SmtpSettings.from_url(
        "smtp://us%40er:p%3Ass@mail.example.org:2525?starttls=true&from=noreply@x.org&timeout=10"
    )
    assert smtp == SmtpSettings(
        host="mail.example.org",
        port=2525,
        username="us@er",
        password="p:ss",
        use_tls=False,
        start_tls=True,
        timeout=10.0,
        default_sender="noreply@x.org",
    )
    assert "p:ss" not in repr(smtp)

    plain = SmtpSettings.from_url("smtp://localhost", default_sender="hub@x.org")
    assert (plain.port, plain.start_tls, plain.use_tls, plain.username) == (25, None, False, None)
    assert plain.default_sender == "hub@x.org"
    assert SmtpSettings.from_url("smtp://h?starttls=true").port == 587
    assert SmtpSettings.from_url("smtp://h?starttls=false").start_tls is False

    tls = SmtpSettings.from_url("smtps://u:p@smtp.example.org")
    assert (tls.port, tls.use_tls, tls.start_tls) == (465, True, False)


@pytest.mark.parametrize(
    "url",
    [
        "http://mail.example.org",
        "smtp://",
        "smtp://h:99999",
        "smtp://h?starttls=maybe",
        "smtp://h?timeout=abc",
        "smtp://h?timeout=0",
        "smtp://h?bogus=1",
        "smtp://h?from=not-an-address",
        "smtps://h?starttls=true",
        "smtp://h/path",
    ],
)
def test_from_url_refuses(url: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        SmtpSettings.from_url(url)
    assert caught.value.field == "smtp_url"


def test_validate_addresses() -> None:
    assert validate_addresses("a@x.org, B <b@x.org>", "/to") == ["a@x.org", "B <b@x.org>"]
    assert validate_addresses('"Doe, Jane" <j@x.org>', "/to") == ['"Doe, Jane" <j@x.org>']
    assert validate_addresses(["a@x.org", "c@y.org"], "/to") == ["a@x.org", "c@y.org"]
    with pytest.raises(InvalidInput) as caught:
        validate_addresses("a@x.org, nobody", "/action/config/to")
    assert caught.value.field == "/action/config/to"
    with pytest.raises(InvalidInput) as caught:
        validate_addresses(["a@x.org", "b at x.org"], "/to")
    assert caught.value.field == "/to/1"
    with pytest.raises(InvalidInput):
        validate_addresses("", "/to")
    with pytest.raises(InvalidInput):
        validate_addresses([], "/to")
