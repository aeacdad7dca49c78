"""The narrow ports the node lends its services and actions, instead of
itself: each component names the few calls it makes, the node
(:mod:`tidings.node`) passes its bound methods, and a unit test passes a
small fake. Nothing here imports the node, so no component that takes a
port can form an import circle with it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from tidings.core.statemachine import Transition
from tidings.store.base import AppendResult, NotificationRecord, TenantRecord

Control = Callable[..., Awaitable[None]]
"""``control(kind, **fields)``: apply an identity or rules change in this
process, then tell the others (:meth:`tidings.node.Tidings.control`)."""

WakeWorker = Callable[[], None]
"""Tell this process's job worker that jobs may be due (a no-op without one)."""


class Publisher(Protocol):
    """Publish one event as the operator (:meth:`tidings.node.Tidings.publish`);
    returns once it is durable. The same ``idempotency_key`` publishes once."""

    def __call__(
        self, event: dict[str, Any], *, idempotency_key: str | None = None
    ) -> Awaitable[AppendResult]: ...


class AdmitGate(Protocol):
    """The one lifecycle check of every write (:meth:`tidings.node.Tidings.admit`):
    the tenant if it accepts writes now, else ``InvalidInput`` (unknown) or
    ``Conflict`` carrying its ``state``."""

    def __call__(self, tenant_id: str, *, field: str = "/tenantId") -> Awaitable[TenantRecord]: ...


class TenantTransitions(Protocol):
    """Move a tenant through its lifecycle (:meth:`tidings.node.Tidings.transition_tenant`)."""

    def __call__(
        self,
        tenant_id: str,
        to: str,
        *,
        reason: str | None = None,
        triggered_by: str | None = None,
        trigger_source: str = "user",
    ) -> Awaitable[tuple[Transition, AppendResult | None]]: ...


class Notifier(Protocol):
    """In-app notifications as trusted code (rules, the rule book) writes
    them: :class:`tidings.services.notifications.Notifications` implements it."""

    async def members(self, tenant_id: str, audience: str) -> list[str]: ...

    async def create(
        self,
        tenant_id: str,
        user_id: str,
        *,
        type: str,
        title: str,
        body: str = "",
        link: str | None = None,
        source_event_id: str | None = None,
    ) -> NotificationRecord: ...


class CatalogRefresh(Protocol):
    """Rebuild one tenant's catalog after its stored types changed
    (:meth:`tidings.catalog.tenants.TenantCatalogs.refresh`)."""

    def __call__(self, tenant_id: str | None = None) -> Awaitable[None]: ...


__all__ = [
    "AdmitGate",
    "CatalogRefresh",
    "Control",
    "Notifier",
    "Publisher",
    "TenantTransitions",
    "WakeWorker",
]
