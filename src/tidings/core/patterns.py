"""Event type patterns: ``qms.*``, ``TICKET_*``, ``lms.course.completed``.

A ``*`` matches any run of characters (dots included), ``?`` one character.
Matching is case-sensitive. Used by stream filters and rule triggers (one
matcher for both).

Matching is linear, never backtracking: runs of ``*`` collapse to one, the
pattern splits at ``*`` into fixed-length segments (``?`` is a one-character
wildcard inside a segment), the first segment must start the name, the
last must end it, and each middle segment is placed at its leftmost fit
after the previous one (a greedy placement is optimal for globs). The work
is at most (name length) x (pattern length), and both are bounded: a
pattern is at most ``MAX_PATTERN_CHARS`` characters from ``[A-Za-z0-9_.-*?]``
and a filter holds at most ``MAX_PATTERNS`` patterns.
"""

from __future__ import annotations

import re
from functools import lru_cache

from tidings.errors import InvalidInput

MAX_PATTERNS = 50
MAX_PATTERN_CHARS = 128
_PATTERN_RE = re.compile(rf"[A-Za-z0-9_.\-*?]{{1,{MAX_PATTERN_CHARS}}}")
_STARS_RE = re.compile(r"\*+")
_SEEN_LIMIT = 1024  # (type -> matched) answers a filter remembers

# A segment: a literal (str methods) or, when it holds ``?``, a regex of
# literals and ``.`` only: no quantifier, so it cannot backtrack.
Segment = str | re.Pattern[str]


def is_wild(pattern: str) -> bool:
    return "*" in pattern or "?" in pattern


def _segment(part: str) -> tuple[Segment, int]:
    """A segment and its length (``?`` counts one character)."""
    if "?" not in part:
        return part, len(part)
    body = "".join("." if c == "?" else re.escape(c) for c in part)
    return re.compile(body, re.DOTALL), len(part)


def _at(segment: Segment, text: str, pos: int) -> bool:
    if isinstance(segment, str):
        return text.startswith(segment, pos)
    return segment.match(text, pos) is not None


def _find(segment: Segment, text: str, pos: int, end: int) -> int:
    if isinstance(segment, str):
        return text.find(segment, pos, end)
    found = segment.search(text, pos, end)
    return -1 if found is None else found.start()


class Glob:
    """One compiled pattern; ``matches`` runs in linear time."""

    __slots__ = ("_head", "_length", "_middle", "_star", "_tail", "pattern")

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        parts = _STARS_RE.sub("*", pattern).split("*")
        self._star = len(parts) > 1
        self._head = _segment(parts[0])
        self._middle = tuple(_segment(p) for p in parts[1:-1])  # never empty: stars collapsed
        self._tail = _segment(parts[-1]) if self._star else ("", 0)
        self._length = sum(len(p) for p in parts)  # the shortest name that can match

    def matches(self, text: str) -> bool:
        head, head_length = self._head
        if not self._star:
            return len(text) == self._length and _at(head, text, 0)
        if len(text) < self._length or not _at(head, text, 0):
            return False
        tail, tail_length = self._tail
        end = len(text) - tail_length
        if not _at(tail, text, end):
            return False
        pos = head_length
        for segment, length in self._middle:
            found = _find(segment, text, pos, end)
            if found < 0:
                return False
            pos = found + length
        return True


@lru_cache(maxsize=4096)
def compile_pattern(pattern: str) -> Glob:
    """The matcher of one pattern (refused with 422 ``field=types`` when
    malformed or too long)."""
    if not _PATTERN_RE.fullmatch(pattern):
        raise InvalidInput(
            f"invalid type pattern {pattern[:MAX_PATTERN_CHARS]!r}: at most "
            f"{MAX_PATTERN_CHARS} characters of A-Z a-z 0-9 _ . - * ?",
            field="types",
        )
    return Glob(pattern)


class TypeFilter:
    """A set of patterns; an empty filter matches every type.

    ``matches`` runs per event per filtered stream: exact names are a set
    lookup, and the wildcard answer for a type is remembered (a catalog
    has few types), so the steady state is one or two dictionary lookups.
    """

    __slots__ = ("_exact", "_globs", "_seen", "patterns")

    def __init__(self, patterns: tuple[str, ...] = ()) -> None:
        if len(patterns) > MAX_PATTERNS:
            raise InvalidInput(f"at most {MAX_PATTERNS} type patterns", field="types")
        globs = [compile_pattern(p) for p in patterns]  # validates every pattern
        self.patterns = patterns
        self._exact = frozenset(p for p in patterns if not is_wild(p))
        self._globs = tuple(g for g in globs if is_wild(g.pattern))
        self._seen: dict[str, bool] = {}

    @classmethod
    def parse(cls, text: str | None) -> TypeFilter:
        if not text:
            return cls()
        if len(text) > MAX_PATTERNS * (MAX_PATTERN_CHARS + 2):
            raise InvalidInput(f"at most {MAX_PATTERNS} type patterns", field="types")
        return cls(tuple(p.strip() for p in text.split(",") if p.strip()))

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def matches(self, event_type: str) -> bool:
        if not self.patterns or event_type in self._exact:
            return True
        found = self._seen.get(event_type)
        if found is None:
            found = any(glob.matches(event_type) for glob in self._globs)
            if len(self._seen) >= _SEEN_LIMIT:
                self._seen.clear()
            self._seen[event_type] = found
        return found
