"""The subscription index: tenant -> audience -> subscriptions.

Dispatch cost follows the number of *matching* subscriptions: an event looks
up only the buckets of its own audiences. The keys are exactly those of
:mod:`tidings.core.audience` (``can_see``); ``tests/core/test_audience.py`` checks
the index against the predicate for random viewers and events.

Buckets:

* ``(tenant, audience)``  - viewers of that tenant holding the audience, and
  platform viewers scoped to that tenant (role/permission audiences only);
* ``("*", audience)``     - platform viewers of every tenant (role/permission);
* ``(tenant, "*")``       - operators of one tenant;
* ``("*", "*")``          - operators of every tenant.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from typing import Generic, Protocol, TypeVar

from tidings.core.audience import ALL_TENANTS, Viewer

EVERYTHING = "*"
Key = tuple[str, str]


class Indexed(Protocol):
    viewer: Viewer


def viewer_keys(viewer: Viewer) -> set[Key]:
    if viewer.everything:
        scopes = [viewer.tenant_id] if viewer.tenant_id else []
        scopes += list(viewer.platform_tenants)
        return {(scope, EVERYTHING) for scope in scopes}
    keys: set[Key] = set()
    if viewer.tenant_id is not None:
        keys.update((viewer.tenant_id, a) for a in viewer.audiences)
    for scope in viewer.platform_tenants:
        keys.update((scope, a) for a in viewer.cross_tenant_audiences)
    return keys


def event_keys(tenant_id: str, audiences: Iterable[str]) -> list[Key]:
    keys: list[Key] = []
    for audience in audiences:
        keys.append((tenant_id, audience))
        if audience.startswith(("role:", "permission:")):
            keys.append((ALL_TENANTS, audience))
    keys.append((tenant_id, EVERYTHING))
    keys.append((ALL_TENANTS, EVERYTHING))
    return keys


S = TypeVar("S", bound=Indexed)


class SubscriptionIndex(Generic[S]):
    def __init__(self) -> None:
        self._buckets: dict[Key, set[S]] = {}
        self._keys: dict[S, set[Key]] = {}

    def __len__(self) -> int:
        return len(self._keys)

    def __iter__(self) -> Iterator[S]:
        return iter(list(self._keys))

    def add(self, sub: S) -> None:
        keys = viewer_keys(sub.viewer)
        self._keys[sub] = keys
        for key in keys:
            self._buckets.setdefault(key, set()).add(sub)

    def remove(self, sub: S) -> None:
        for key in self._keys.pop(sub, ()):
            bucket = self._buckets.get(key)
            if bucket is not None:
                bucket.discard(sub)
                if not bucket:
                    del self._buckets[key]

    def reindex(self, sub: S) -> None:
        """Call after ``sub.viewer`` changed (permissions granted or revoked)."""
        if sub in self._keys:
            self.remove(sub)
            self.add(sub)

    def matching(self, tenant_id: str, audiences: Collection[str]) -> Collection[S]:
        """The subscriptions that may see an event; each at most once."""
        if not audiences:
            return ()  # unscoped events are never delivered
        found: list[set[S]] = []
        get = self._buckets.get
        for key in event_keys(tenant_id, audiences):
            bucket = get(key)
            if bucket:
                found.append(bucket)
        if not found:
            return ()
        if len(found) == 1:
            return found[0]
        return set().union(*found)
