"""Which rules an event triggers (pure: no I/O).

A rule triggers for an event when its scope is global or the event's
tenant, its type pattern matches the event type and its conditions match
the envelope. :class:`RuleSet` answers that for every appended event, on
the publish path, so it indexes rules by tenant and exact type and only
evaluates conditions of rules whose pattern already matched; with no
rules at all it costs one dictionary lookup.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tidings.core.conditions import Condition
from tidings.core.envelope import Event
from tidings.core.patterns import compile_pattern

GLOBAL = ""  # the index key of rules that apply to every tenant


@dataclass(frozen=True, slots=True)
class RuleTrigger:
    """What matching needs of a rule."""

    rule_id: str
    tenant_id: str | None  # None: every tenant
    priority: int  # higher runs first
    type_pattern: str
    conditions: Condition
    first_delay: float = 0.0  # seconds before the first attempt

    @property
    def is_wild(self) -> bool:
        return "*" in self.type_pattern or "?" in self.type_pattern

    def matches_type(self, event_type: str) -> bool:
        if not self.is_wild:
            return event_type == self.type_pattern
        return compile_pattern(self.type_pattern).matches(event_type)


def envelope_view(event: Event) -> dict[str, Any]:
    """The envelope as conditions and templates address it (``data.x``,
    ``actor.userId``, ``tenantId``...)."""
    return event.to_wire()


class RuleSet:
    """Enabled rules, indexed for matching. Immutable: build a new one when
    rules change and swap it in (readers on other threads see either)."""

    __slots__ = ("_cache", "_exact", "_wild", "count")
    CACHE_SIZE = 10_000  # (tenant, type) pairs remembered

    def __init__(self, triggers: Iterable[RuleTrigger] = ()) -> None:
        self._exact: dict[tuple[str, str], list[RuleTrigger]] = {}
        self._wild: dict[str, list[RuleTrigger]] = {}
        # (tenant, type) -> its candidates in priority order: patterns are
        # matched once per pair, not once per event.
        self._cache: dict[tuple[str, str], list[RuleTrigger]] = {}
        self.count = 0
        for trigger in triggers:
            scope = trigger.tenant_id or GLOBAL
            if trigger.is_wild:
                self._wild.setdefault(scope, []).append(trigger)
            else:
                self._exact.setdefault((scope, trigger.type_pattern), []).append(trigger)
            self.count += 1

    def __len__(self) -> int:
        return self.count

    def candidates(self, tenant_id: str, event_type: str) -> list[RuleTrigger]:
        """Rules in scope whose type pattern matches, conditions unchecked,
        highest priority first (ties by id, so the order is stable)."""
        key = (tenant_id, event_type)
        found = self._cache.get(key)
        if found is None:
            found = []
            for scope in (tenant_id, GLOBAL):
                found += self._exact.get((scope, event_type), ())
                found += (t for t in self._wild.get(scope, ()) if t.matches_type(event_type))
            found = sort_by_priority(found)
            if len(self._cache) >= self.CACHE_SIZE:
                self._cache.clear()
            self._cache[key] = found
        return found

    def match(self, event: Event) -> list[RuleTrigger]:
        """The rules ``event`` triggers, highest priority first."""
        if not self.count:
            return []
        found = self.candidates(event.tenant_id, event.type)
        if not found:
            return found
        view: Mapping[str, Any] | None = None
        matched: list[RuleTrigger] = []
        for trigger in found:
            if not trigger.conditions.always:
                if view is None:
                    view = envelope_view(event)
                if not trigger.conditions.matches(view):
                    continue
            matched.append(trigger)
        return matched


def sort_by_priority(triggers: Sequence[RuleTrigger]) -> list[RuleTrigger]:
    return sorted(triggers, key=lambda t: (-t.priority, t.rule_id))
