"""The metric names a PromQL expression reads, and a parsed scrape to look
them up in (for the dashboard and alert tests)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
# Words of PromQL that look like names: aggregation modifiers, vector
# matching, set operators, offset, literals.
KEYWORDS = frozenset(
    {
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "bool",
        "and",
        "or",
        "unless",
        "offset",
        "inf",
        "nan",
    }
)
# Series Prometheus makes itself at scrape time: no exporter exposes them.
SYNTHETIC = frozenset({"up", "scrape_duration_seconds", "scrape_samples_scraped"})

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_MATCHERS = re.compile(r"\{[^{}]*\}")  # label matchers (strings already removed)
_RANGE = re.compile(r"\[[^\]]*\]")  # [5m], [$__rate_interval], subqueries
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_NAME = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")


def metric_names(expr: str) -> set[str]:
    """The metric names ``expr`` selects: functions (a name followed by
    ``(``), label names (inside ``{}`` and grouping clauses), keywords,
    numbers and durations are left out."""
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    names = set()
    for match in _NAME.finditer(text):
        name = match.group()
        before = text[match.start() - 1] if match.start() else " "
        rest = text[match.end() :].lstrip()
        if rest.startswith("(") or name.lower() in KEYWORDS or before.isdigit() or before == "$":
            continue
        names.add(name)
    return names


@dataclass(frozen=True)
class Scrape:
    """A parsed exposition: family name -> type, and every sample name."""

    types: dict[str, str]
    samples: frozenset[str]

    @classmethod
    def parse(cls, text: str) -> Scrape:
        types: dict[str, str] = {}
        samples: set[str] = set()
        for family in text_string_to_metric_families(text):
            types[family.name] = family.type
            samples.update(sample.name for sample in family.samples)
        return cls(types, frozenset(samples))

    def has(self, name: str) -> bool:
        """Whether ``name`` is a series of this scrape: a sample name, or a
        histogram family's ``_bucket``/``_sum``/``_count``."""
        if name in self.samples or name in SYNTHETIC:
            return True
        for suffix in HISTOGRAM_SUFFIXES:
            if name.endswith(suffix) and self.types.get(name.removesuffix(suffix)) == "histogram":
                return True
        return False

    def missing(self, names: Iterable[str]) -> set[str]:
        return {name for name in names if not self.has(name)}
