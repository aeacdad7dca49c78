"""The tenants at a glance, for the Integration Manager's tenants page:
each tenant in the caller's scope with how many users, live API keys and
events it has.

Bounded work whatever the size of the store: users and keys are counted
in two grouped queries for all listed tenants, events per tenant up to
:data:`EVENT_COUNT_CAP` (the page shows "10,000+" beyond), and at most
:data:`MAX_TENANTS` tenants are summarised per call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from tidings.services.access import authorize
from tidings.services.auth import Principal
from tidings.services.identity import Identity
from tidings.store.base import LogQuery, TenantRecord
from tidings.store.ports import Directory, EventLog

EVENT_COUNT_CAP = 10_000
MAX_TENANTS = 500


class OverviewStore(Directory, EventLog, Protocol):
    """The store roles the overview reads."""


@dataclass(frozen=True, slots=True)
class TenantSummary:
    tenant: TenantRecord
    users: int
    api_keys: int  # live ones: neither revoked nor expired
    events: int  # at most the cap
    events_capped: bool  # the tenant has at least ``events`` events, maybe more


@dataclass(frozen=True, slots=True)
class TenantOverviewPage:
    items: list[TenantSummary]
    more: int  # tenants in scope beyond the ones summarised


class TenantOverview:
    """Summaries of tenants: :meth:`Identity.list_tenants` (which scopes
    them to the caller) plus bounded counts from the store."""

    def __init__(
        self, store: OverviewStore, identity: Identity, *, event_cap: int = EVENT_COUNT_CAP
    ) -> None:
        self._store = store
        self._identity = identity
        self._event_cap = event_cap

    async def summaries(self, principal: Principal) -> TenantOverviewPage:
        """The caller's tenants (by id, at most :data:`MAX_TENANTS`) with
        their counts; a tenant-bound credential gets its own tenant only."""
        tenants = sorted(await self._identity.list_tenants(principal), key=lambda t: t.id)
        authorize(principal, "users.read", scoped=False)
        authorize(principal, "api_keys.list", scoped=False)
        shown = tenants[:MAX_TENANTS]
        members = await self._store.member_counts([t.id for t in shown])
        items = []
        for tenant in shown:
            users, keys = members.get(tenant.id, (0, 0))
            events = await self._store.count_events(
                LogQuery(tenant_ids=[tenant.id]), cap=self._event_cap
            )
            items.append(TenantSummary(tenant, users, keys, events, events >= self._event_cap))
        return TenantOverviewPage(items, len(tenants) - len(shown))
