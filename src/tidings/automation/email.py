"""The ``email`` action: one message through an SMTP relay (``aiosmtplib``).

``send_email`` never raises for SMTP or network trouble: it returns an
:class:`ActionOutcome` the worker records. A 5xx reply is permanent (the
relay will say the same next time); a 4xx, a timeout or a refused connection
is worth retrying. Every attempt of one job carries the same ``Message-ID``
so receivers can drop the copy a retry after a lost reply would deliver.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formataddr, formatdate, getaddresses, parseaddr
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

from tidings.automation.outcome import ActionOutcome
from tidings.errors import InvalidInput

MAX_RECIPIENTS = 100
DEFAULT_SENDER = "tidings@localhost"  # when neither the rule, the tenant nor smtp_url names one
# Headers the action builds itself; caller headers of these names are ignored.
RESERVED_HEADERS = frozenset(
    {
        "from",
        "sender",
        "to",
        "cc",
        "bcc",
        "subject",
        "date",
        "message-id",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
    }
)
_HEADER_NAME_RE = re.compile(r"^[!-9;-~]{1,76}$")  # printable ASCII without ':'
_MSGID_RE = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.\-]{1,200}(@[A-Za-z0-9.\-]{1,200})?$")


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    """Where and how to hand mail over. ``start_tls=None`` upgrades when the
    server offers STARTTLS; ``use_tls`` is implicit TLS (``smtps://``)."""

    host: str
    port: int = 25
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    use_tls: bool = False
    start_tls: bool | None = None
    timeout: float = 30.0
    default_sender: str | None = None

    @classmethod
    def from_url(cls, url: str, *, default_sender: str | None = None) -> SmtpSettings:
        """Parse ``smtp[s]://user:pass@host:port?starttls=&from=&timeout=``.

        ``from`` in the URL wins over ``default_sender``. Without a port:
        465 for ``smtps``, 587 with ``starttls=true``, else 25.
        """
        where = "smtp_url"
        try:
            parts = urlsplit(url)
            port = parts.port
        except (ValueError, TypeError) as exc:
            raise InvalidInput(f"invalid SMTP URL: {exc}", field=where) from None
        if parts.scheme not in ("smtp", "smtps"):
            raise InvalidInput("the SMTP URL must start with smtp:// or smtps://", field=where)
        if not parts.hostname:
            raise InvalidInput("the SMTP URL has no host", field=where)
        if parts.path not in ("", "/") or parts.fragment:
            raise InvalidInput("the SMTP URL takes no path or fragment", field=where)
        try:
            query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
        except ValueError:
            raise InvalidInput("the SMTP URL has a malformed query", field=where) from None
        unknown = sorted(set(query) - {"starttls", "from", "timeout"})
        if unknown:
            raise InvalidInput(f"unknown SMTP URL parameter {unknown[0]!r}", field=where)
        if any(len(values) > 1 for values in query.values()):
            raise InvalidInput("an SMTP URL parameter is repeated", field=where)
        params = {name: values[0] for name, values in query.items()}

        use_tls = parts.scheme == "smtps"
        start_tls = _starttls(params.get("starttls", "auto"), where)
        if use_tls and start_tls:
            raise InvalidInput("smtps:// is implicit TLS; it cannot also use STARTTLS", field=where)
        timeout = _timeout(params.get("timeout", "30"), where)
        sender = params.get("from") or default_sender
        if sender is not None:
            sender = validate_addresses(sender, where)[0]
        return cls(
            host=parts.hostname,
            port=port or (465 if use_tls else 587 if start_tls else 25),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password is not None else None,
            use_tls=use_tls,
            start_tls=False if use_tls else start_tls,
            timeout=timeout,
            default_sender=sender,
        )


def validate_addresses(value: str | Sequence[str], field: str) -> list[str]:
    """Addresses from a comma-separated string or a list, each checked.

    Display names are kept (``"Doe, Jane" <jane@example.org>`` is one
    address). Run it on rendered text: the configured value may be a template.
    """
    items = [value] if isinstance(value, str) else list(value)
    found: list[str] = []
    for index, item in enumerate(items):
        where = field if isinstance(value, str) else f"{field}/{index}"
        if not isinstance(item, str):
            raise InvalidInput("an email address must be a string", field=where)
        for name, address in getaddresses([item]):
            if not _looks_like_address(address):
                shown = _one_line(name or address or item, 80)
                raise InvalidInput(f"not an email address: {shown!r}", field=where)
            found.append(formataddr((name, address)) if name else address)
    if not found:
        raise InvalidInput("at least one email address is required", field=field)
    if len(found) > MAX_RECIPIENTS:
        raise InvalidInput(f"at most {MAX_RECIPIENTS} addresses", field=field)
    return found


async def send_email(
    smtp: SmtpSettings,
    *,
    sender: str | None,
    to: Sequence[str],
    subject: str,
    body: str,
    html: str | None = None,
    message_id: str,
    headers: Mapping[str, str] | None = None,
) -> ActionOutcome:
    """Send one message; the outcome says whether a retry can help."""
    from_header = sender or smtp.default_sender
    if not from_header:
        return ActionOutcome.failed(
            "no sender: set the action's from or the SMTP from", permanent=True
        )
    envelope_from = parseaddr(from_header)[1]
    recipients = [parseaddr(item)[1] for item in to]
    if not _looks_like_address(envelope_from) or not recipients:
        return ActionOutcome.failed("no valid sender or recipient", permanent=True)
    try:
        message = build_message(
            from_header=from_header,
            to=to,
            subject=subject,
            body=body,
            html=html,
            message_id=message_id,
            headers=headers,
        )
    except (ValueError, TypeError) as exc:
        return ActionOutcome.failed(
            f"cannot build the message: {_one_line(str(exc))}", permanent=True
        )
    try:
        refused, reply = await aiosmtplib.send(
            message,
            sender=envelope_from,
            recipients=recipients,
            hostname=smtp.host,
            port=smtp.port,
            username=smtp.username,
            password=smtp.password,
            use_tls=smtp.use_tls,
            start_tls=smtp.start_tls,
            timeout=smtp.timeout,
        )
    except aiosmtplib.SMTPRecipientsRefused as exc:
        codes = [refusal.code for refusal in exc.recipients]
        first = exc.recipients[0] if exc.recipients else None
        detail = "all recipients refused"
        if first is not None:
            detail += f": {first.recipient} {first.code} {_one_line(first.message)}"
        permanent = bool(codes) and all(500 <= code < 600 for code in codes)
        return ActionOutcome.failed(
            detail, status=first.code if first else None, permanent=permanent
        )
    except aiosmtplib.SMTPResponseException as exc:
        return ActionOutcome.failed(
            f"{exc.code} {_one_line(exc.message)}",
            status=exc.code if exc.code > 0 else None,
            permanent=500 <= exc.code < 600,
        )
    except (aiosmtplib.SMTPTimeoutError, TimeoutError):
        return ActionOutcome.failed(f"timeout after {smtp.timeout}s")
    except (aiosmtplib.SMTPException, OSError) as exc:
        return ActionOutcome.failed(_network_detail(exc, smtp))
    except ValueError as exc:  # an address aiosmtplib cannot put on the wire
        return ActionOutcome.failed(f"cannot send: {_one_line(str(exc))}", permanent=True)
    detail = f"250 {_one_line(reply)}"
    if refused:
        some = ", ".join(f"{address} {response.code}" for address, response in refused.items())
        detail += f" (refused: {_one_line(some, 200)})"
    return ActionOutcome(True, detail, status=250)


def build_message(
    *,
    from_header: str,
    to: Sequence[str],
    subject: str,
    body: str,
    html: str | None,
    message_id: str,
    headers: Mapping[str, str] | None,
) -> EmailMessage:
    """The message: text/plain, or multipart/alternative with an HTML part.
    Raises ValueError on a header that cannot be written safely."""
    message = EmailMessage()
    message["From"] = from_header
    message["To"] = ", ".join(to)
    message["Subject"] = " ".join(subject.split())  # a template may leave newlines
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = _message_id(message_id, parseaddr(from_header)[1])
    for name, value in (headers or {}).items():
        if not _HEADER_NAME_RE.fullmatch(name):
            raise ValueError(f"invalid header name {name!r}")
        if name.lower() in RESERVED_HEADERS:
            continue
        message[name] = value  # refuses CR/LF in the value
    message.set_content(body)
    if html is not None:
        message.add_alternative(html, subtype="html")
    return message


def _message_id(message_id: str, sender: str) -> str:
    """``<id@domain>``; an id without a domain takes the sender's, so it
    stays the same for every attempt of the job."""
    text = message_id.strip().removeprefix("<").removesuffix(">")
    if not _MSGID_RE.fullmatch(text):
        raise ValueError(f"invalid message id {message_id!r}")
    if "@" not in text:
        text = f"{text}@{sender.rpartition('@')[2] or 'tidings.invalid'}"
    return f"<{text}>"


def _looks_like_address(address: str) -> bool:
    local, at, domain = address.rpartition("@")
    return (
        bool(at and local and domain)
        and not any(c.isspace() or c in "<>,;" for c in address)
        and "." not in (domain[0], domain[-1])
    )


def _starttls(value: str, where: str) -> bool | None:
    lowered = value.lower()
    if lowered in ("", "auto"):
        return None
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off"):
        return False
    raise InvalidInput("starttls must be true, false or auto", field=where)


def _timeout(value: str, where: str) -> float:
    try:
        timeout = float(value)
    except ValueError:
        timeout = -1.0
    if not 0 < timeout <= 600:
        raise InvalidInput("timeout must be a number of seconds in (0, 600]", field=where)
    return timeout


def _network_detail(exc: BaseException, smtp: SmtpSettings) -> str:
    cause: BaseException | None = exc
    for _ in range(8):  # the chain can loop; a few links are enough
        if cause is None:
            break
        if isinstance(cause, ConnectionRefusedError) or "refused" in str(cause).lower():
            return f"connection refused by {smtp.host}:{smtp.port}"
        cause = cause.__cause__ or cause.__context__
    text = _one_line(str(exc)) or type(exc).__name__
    return f"SMTP connection failed: {text}"


def _one_line(text: str, limit: int = 300) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


__all__ = [
    "RESERVED_HEADERS",
    "SmtpSettings",
    "build_message",
    "send_email",
    "validate_addresses",
]
