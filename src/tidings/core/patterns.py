"""Event type patterns: ``qms.*``, ``TICKET_*``, ``lms.course.completed``.

A ``*`` matches any run of characters (dots included), ``?`` one character.
Matching is case-sensitive. Used by stream filters and rule triggers.
"""

from __future__ import annotations

import re
from functools import lru_cache

from tidings.errors import InvalidInput

_PATTERN_RE = re.compile(r"^[A-Za-z0-9_.\-*?]{1,128}$")


@lru_cache(maxsize=4096)
def compile_pattern(pattern: str) -> re.Pattern[str]:
    if not _PATTERN_RE.fullmatch(pattern):
        raise InvalidInput(f"invalid type pattern {pattern!r}", field="types")
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(f"^{body}$")


class TypeFilter:
    """A set of patterns; an empty filter matches every type."""

    __slots__ = ("_exact", "_regex", "patterns")

    def __init__(self, patterns: tuple[str, ...] = ()) -> None:
        self.patterns = patterns
        wild = [p for p in patterns if "*" in p or "?" in p]
        self._exact = frozenset(p for p in patterns if p not in wild)
        for p in patterns:
            compile_pattern(p)  # validate
        self._regex = (
            re.compile("|".join(compile_pattern(p).pattern for p in wild)) if wild else None
        )

    @classmethod
    def parse(cls, text: str | None) -> TypeFilter:
        if not text:
            return cls()
        parts = tuple(p.strip() for p in text.split(",") if p.strip())
        if len(parts) > 50:
            raise InvalidInput("at most 50 type patterns", field="types")
        return cls(parts)

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def matches(self, event_type: str) -> bool:
        if not self.patterns or event_type in self._exact:
            return True
        return self._regex is not None and self._regex.match(event_type) is not None
