"""Logs: one JSON object per line (``--log-format json``), or plain text.

JSON lines are written by :class:`JSONFormatter` (the standard library's
``logging`` and orjson; no other dependency): ``ts`` (UTC, ms), ``level``,
``logger``, ``msg`` and every ``extra`` field of the record, e.g. the
access log's ``method``, ``route``, ``path``, ``status``, ``duration_ms``
and ``request_id``. Terminal colours never get in: uvicorn's
``color_message`` extra is dropped and ANSI escape sequences are removed
from messages (also in text mode, where a log file is no terminal).
"""

from __future__ import annotations

import logging
import re
import sys
import time

import orjson

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}
_DROPPED = _STANDARD | {"color_message"}  # uvicorn's coloured copy of msg
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def plain(text: str) -> str:
    """``text`` without ANSI escape sequences (colours, cursor moves)."""
    return _ANSI.sub("", text) if "\x1b" in text else text


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": plain(record.getMessage()),
        }
        entry.update({k: v for k, v in record.__dict__.items() if k not in _DROPPED})
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return plain(super().format(record))


def configure_logging(level: str = "info", *, json: bool = False) -> None:
    """Send every logger's records (Tidings', uvicorn's, libraries') to
    stderr in one format. uvicorn's own access log stays off: the front
    router writes one ``tidings.access`` line per request instead."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JSONFormatter() if json else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uvicorn_log = logging.getLogger(name)
        uvicorn_log.handlers[:] = []  # through the root handler, in the one format
        uvicorn_log.propagate = True
    logging.getLogger("uvicorn.access").disabled = True
