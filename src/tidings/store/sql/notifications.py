"""The notifications role in SQL."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, insert, select, update

from tidings.store.records import NotificationRecord
from tidings.store.schema import notifications
from tidings.store.sql.common import SQLRole


class SQLNotifications(SQLRole):
    async def create_notification(self, record: NotificationRecord) -> None:
        async with self.backend.write() as conn:
            await conn.execute(
                insert(notifications).values(
                    id=record.id,
                    tenant_id=record.tenant_id,
                    user_id=record.user_id,
                    type=record.type,
                    title=record.title,
                    body=record.body,
                    link=record.link,
                    source_event_id=record.source_event_id,
                    created_at=record.created_at,
                    read_at=record.read_at,
                )
            )

    async def list_notifications(
        self, tenant_id: str, user_id: str, *, unread_only: bool, before: str | None, limit: int
    ) -> list[NotificationRecord]:
        stmt = select(notifications).where(
            notifications.c.tenant_id == tenant_id, notifications.c.user_id == user_id
        )
        if unread_only:
            stmt = stmt.where(notifications.c.read_at.is_(None))
        if before is not None:
            stmt = stmt.where(notifications.c.id < before)
        stmt = stmt.order_by(notifications.c.id.desc()).limit(limit)
        async with self.backend.read() as conn:
            rows = (await conn.execute(stmt)).all()
        return [_notification(r) for r in rows]

    async def unread_count(self, tenant_id: str, user_id: str) -> int:
        stmt = select(func.count()).where(
            notifications.c.tenant_id == tenant_id,
            notifications.c.user_id == user_id,
            notifications.c.read_at.is_(None),
        )
        async with self.backend.read() as conn:
            return int((await conn.execute(stmt)).scalar_one())

    async def owned_notifications(
        self, tenant_id: str, user_id: str, ids: Sequence[str]
    ) -> set[str]:
        stmt = select(notifications.c.id).where(
            notifications.c.tenant_id == tenant_id,
            notifications.c.user_id == user_id,
            notifications.c.id.in_(list(ids)),
        )
        async with self.backend.read() as conn:
            return {row[0] for row in await conn.execute(stmt)}

    async def mark_read(self, tenant_id: str, user_id: str, ids: Sequence[str] | None) -> int:
        """Mark the user's notifications read (``ids`` None: all); returns
        how many changed."""
        stmt = (
            update(notifications)
            .where(
                notifications.c.tenant_id == tenant_id,
                notifications.c.user_id == user_id,
                notifications.c.read_at.is_(None),
            )
            .values(read_at=time.time())
        )
        if ids is not None:
            stmt = stmt.where(notifications.c.id.in_(list(ids)))
        async with self.backend.write() as conn:
            result = await conn.execute(stmt)
        return int(result.rowcount)


def _notification(row: Any) -> NotificationRecord:
    return NotificationRecord(
        id=row.id,
        tenant_id=row.tenant_id,
        user_id=row.user_id,
        type=row.type,
        title=row.title,
        body=row.body,
        link=row.link,
        source_event_id=row.source_event_id,
        created_at=row.created_at,
        read_at=row.read_at,
    )
