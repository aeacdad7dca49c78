"""In-app notifications (seed 004): one message for one user.

Every change is pushed live to ``user:<id>``: creating one publishes
``notification.created`` (with the new unread count), marking some or all
read publishes ``notification.read`` (with the new unread count), so a
badge shown from the stream always equals ``GET .../unread-count``.

A user only sees and changes their own notifications; ids that are not
theirs answer 404 (not 403: their existence is not revealed) and change
nothing. Rules' ``send_notification`` action writes through this module
(:meth:`Notifications.create` and :meth:`Notifications.members`, the
:class:`~tidings.services.ports.Notifier` port: trusted callers, no
credential). A tenant that accepts no writes (the node's admit gate) gets a
409 before anything is stored or published.

Authorization (:mod:`tidings.services.access`): ``notifications.create``
for :meth:`Notifications.send` (an API key or the admin key, for a tenant
in its scope), ``notifications.read`` for the caller's own list, count and
marks (a user token only). A refused caller is refused before any read or
write.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from tidings.core.audience import Viewer, can_see
from tidings.core.envelope import iso_utc
from tidings.core.ids import new_monotonic_ulid
from tidings.errors import InvalidInput, NotFound
from tidings.services.access import authorize, authorized_user
from tidings.services.auth import Principal
from tidings.services.ports import AdmitGate, Publisher
from tidings.store.base import NotificationRecord
from tidings.store.ports import Directory, NotificationStore


def notification_json(record: NotificationRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "tenantId": record.tenant_id,
        "userId": record.user_id,
        "type": record.type,
        "title": record.title,
        "body": record.body,
        "link": record.link,
        "sourceEventId": record.source_event_id,
        "createdAt": record.created_at,
        "readAt": record.read_at,
        "read": record.read_at is not None,
    }


@dataclass(frozen=True, slots=True)
class NotificationPage:
    items: list[NotificationRecord]  # newest first
    next_cursor: str | None  # the last item's id when more follow


class NotificationsStore(Directory, NotificationStore, Protocol):
    """The store roles notifications use (their own; users exist)."""


class Notifications:
    """Uses the store's ``NotificationStore`` and ``Directory`` roles (users,
    role defaults); every write passes ``admit`` first and is pushed live
    with ``publish``."""

    def __init__(self, store: NotificationsStore, *, admit: AdmitGate, publish: Publisher) -> None:
        self.store = store
        self._admit = admit
        self._publish = publish

    # -- use cases of a credential ------------------------------------------

    async def send(
        self,
        principal: Principal,
        tenant_id: str | None,
        user_id: str,
        *,
        type: str,
        title: str,
        body: str = "",
        link: str | None = None,
        source_event_id: str | None = None,
    ) -> NotificationRecord:
        """Create a notification for ``user_id`` of ``tenant_id`` (None: the
        credential's own tenant, required for a key bound to none)."""
        authorize(principal, "notifications.create", scoped=False)
        tenant_id = tenant_id or principal.tenant_id
        if tenant_id is None:
            raise InvalidInput(
                "tenantId is required for keys not bound to a tenant", field="/tenantId"
            )
        authorize(principal, "notifications.create", tenant_id, field="/tenantId")
        return await self.create(
            tenant_id,
            user_id,
            type=type,
            title=title,
            body=body,
            link=link,
            source_event_id=source_event_id,
        )

    async def page(
        self, principal: Principal, *, unread_only: bool, before: str | None, limit: int
    ) -> NotificationPage:
        """The caller's notifications, newest first, ``limit`` at most."""
        user = authorized_user(principal, "notifications.read")
        records = await self.store.list_notifications(
            user.tenant_id, user.user_id, unread_only=unread_only, before=before, limit=limit + 1
        )
        page = records[:limit]
        return NotificationPage(page, page[-1].id if len(records) > limit else None)

    async def unread(self, principal: Principal) -> int:
        """How many of the caller's notifications are unread."""
        user = authorized_user(principal, "notifications.read")
        return await self.store.unread_count(user.tenant_id, user.user_id)

    async def read(self, principal: Principal, ids: Sequence[str] | None) -> int:
        """Mark the caller's ``ids`` (None: all) read; the new unread count."""
        user = authorized_user(principal, "notifications.read")
        return await self.mark_read(user.tenant_id, user.user_id, ids)

    # -- trusted (rules, the rule book): the Notifier port -------------------

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
    ) -> NotificationRecord:
        await self._admit(tenant_id)
        if await self.store.get_user(tenant_id, user_id) is None:
            raise NotFound(f"unknown user {user_id!r} in tenant {tenant_id!r}", field="/userId")
        record = NotificationRecord(
            id="ntf_" + new_monotonic_ulid(),
            tenant_id=tenant_id,
            user_id=user_id,
            type=type,
            title=title,
            body=body,
            link=link,
            source_event_id=source_event_id,
            created_at=time.time(),
        )
        await self.store.create_notification(record)
        count = await self.store.unread_count(tenant_id, user_id)
        data = {
            "notificationId": record.id,
            "userId": user_id,
            "type": type,
            "title": title,
            "body": body,
            "createdAt": iso_utc(record.created_at),
            "unreadCount": count,
        }
        if link is not None:
            data["link"] = link
        if source_event_id is not None:
            data["sourceEventId"] = source_event_id
        await self._push(tenant_id, "notification.created", record.id, data)
        return record

    async def members(self, tenant_id: str, audience: str) -> list[str]:
        """The tenant's users in ``audience``, decided by the audience module
        like every other path."""
        if audience.startswith("user:"):
            user = await self.store.get_user(tenant_id, audience[5:])
            return [user.user_id] if user is not None else []
        defaults = await self.store.role_defaults(tenant_id)
        return [
            user.user_id
            for user in await self.store.list_users(tenant_id)
            if can_see(Viewer.for_user(user, defaults), tenant_id, (audience,))
        ]

    async def mark_read(self, tenant_id: str, user_id: str, ids: Sequence[str] | None) -> int:
        """Mark ``ids`` (None: all) read; returns the new unread count."""
        await self._admit(tenant_id)
        if ids is not None:
            wanted = set(ids)
            owned = await self.store.owned_notifications(tenant_id, user_id, list(wanted))
            missing = sorted(wanted - owned)
            if missing:
                raise NotFound(f"no notification {missing[0]!r}", field="/ids")
        changed = await self.store.mark_read(tenant_id, user_id, ids)
        count = await self.store.unread_count(tenant_id, user_id)
        if changed:
            data: dict[str, Any] = {"userId": user_id, "unreadCount": count}
            if ids is None:
                data["all"] = True
            else:
                data["notificationIds"] = sorted(set(ids))
            await self._push(tenant_id, "notification.read", None, data)
        return count

    async def _push(
        self, tenant_id: str, event_type: str, entity_id: str | None, data: dict[str, Any]
    ) -> None:
        event: dict[str, Any] = {"type": event_type, "tenantId": tenant_id, "data": data}
        if entity_id is not None:
            event["entityId"] = entity_id
        await self._publish(event)
