"""Small Markdown writers shared by the generated reference pages."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from typing import Any

CODE_SPAN = re.compile(r"(`+)(.+?)\1")


def cell(value: Any) -> str:
    """``value`` as text in one Markdown table cell: no line breaks, pipes
    escaped, the rest as :func:`prose`."""
    return prose(" ".join(("" if value is None else str(value)).split()).replace("|", "\\|"))


def prose(text: str) -> str:
    """Plain text as Markdown: ``<``, ``&``, ``*`` and ``_`` outside code spans shown as written."""
    pieces, end = [], 0
    for span in CODE_SPAN.finditer(text):
        pieces += [_literal(text[end : span.start()]), span[0]]
        end = span.end()
    return "".join([*pieces, _literal(text[end:])])


def _literal(text: str) -> str:
    # the code's texts are plain: ``qms.*,tasks.*`` is a glob, not emphasis
    text = text.replace("&", "&amp;").replace("<", "&lt;")
    return text.replace("*", "\\*").replace("_", "\\_")


def code(value: Any) -> str:
    """``value`` as inline code safe inside a table cell (empty: nothing)."""
    text = " ".join(("" if value is None else str(value)).split()).replace("|", "\\|")
    if not text:
        return ""
    fence = "``" if "`" in text else "`"
    return f"{fence}{text}{fence}" if fence == "`" else f"{fence} {text} {fence}"


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A Markdown table; cells are already formatted (see :func:`cell`)."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def compact_json(value: Any) -> str:
    """A JSON value on one line (defaults, enums, short schemas)."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def generated_notice(source: str) -> str:
    """The line every generated page starts with, naming what it is read from."""
    return (
        f'!!! info "Generated"\n    This page is generated from {source} each time the '
        "site is built; it cannot drift from the code.\n"
    )
