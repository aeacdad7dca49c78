"""The directory role in SQL: tenants, users, roles, API keys, stream tickets."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.sql.elements import ColumnElement

from tidings.core.audience import UserRecord
from tidings.errors import Unavailable
from tidings.store.records import ApiKeyRecord, TenantRecord
from tidings.store.schema import (
    GLOBAL_SCOPE,
    api_keys,
    lifecycle_log,
    roles,
    stream_tickets,
    tenants,
    users,
)
from tidings.store.sql.common import SQLRole, dumps, upsert


class SQLDirectory(SQLRole):
    async def put_tenant(
        self, tenant_id: str, name: str, settings: Mapping[str, Any]
    ) -> TenantRecord:
        now = time.time()
        async with self.backend.write() as conn:
            row = (await conn.execute(select(tenants).where(tenants.c.id == tenant_id))).first()
            if row is None:
                await conn.execute(
                    insert(tenants).values(
                        id=tenant_id,
                        name=name,
                        state="CREATED",
                        settings=dumps(dict(settings)),
                        created_at=now,
                        updated_at=now,
                    )
                )
                await conn.execute(
                    insert(lifecycle_log).values(
                        entity_type="tenant",
                        tenant_id=tenant_id,
                        entity_id=tenant_id,
                        from_state=None,
                        to_state="CREATED",
                        trigger_source="user",
                        created_at=now,
                    )
                )
            else:
                await conn.execute(
                    update(tenants)
                    .where(tenants.c.id == tenant_id)
                    .values(name=name, settings=dumps(dict(settings)), updated_at=now)
                )
        record = await self.get_tenant(tenant_id)
        if record is None:  # deleted concurrently
            raise Unavailable(f"tenant {tenant_id!r} vanished while being written")
        return record

    async def get_tenant(self, tenant_id: str) -> TenantRecord | None:
        async with self.backend.read() as conn:
            row = (await conn.execute(select(tenants).where(tenants.c.id == tenant_id))).first()
        return None if row is None else _tenant(row)

    async def list_tenants(self) -> list[TenantRecord]:
        async with self.backend.read() as conn:
            rows = (await conn.execute(select(tenants).order_by(tenants.c.id))).all()
        return [_tenant(r) for r in rows]

    async def put_user(self, user: UserRecord) -> None:
        values = {
            "system_role": user.system_role,
            "grants": dumps(sorted(user.grants)),
            "revokes": dumps(sorted(user.revokes)),
            "resources": dumps(sorted(user.resources)),
            "platform": user.platform,
            "platform_tenants": dumps(list(user.platform_tenants)),
            "deleted_at": None,
            "updated_at": time.time(),
        }
        async with self.backend.write() as conn:
            await upsert(
                conn, users, {"tenant_id": user.tenant_id, "user_id": user.user_id}, values
            )

    async def get_user(self, tenant_id: str, user_id: str) -> UserRecord | None:
        async with self.backend.read() as conn:
            row = (
                await conn.execute(
                    select(users).where(
                        users.c.tenant_id == tenant_id,
                        users.c.user_id == user_id,
                        users.c.deleted_at.is_(None),
                    )
                )
            ).first()
        return None if row is None else _user(row)

    async def user_was_deleted(self, tenant_id: str, user_id: str) -> bool:
        async with self.backend.read() as conn:
            row = (
                await conn.execute(
                    select(users.c.deleted_at).where(
                        users.c.tenant_id == tenant_id, users.c.user_id == user_id
                    )
                )
            ).first()
        return row is not None and row[0] is not None

    async def delete_user(self, tenant_id: str, user_id: str) -> bool:
        # A tombstone, so reconnecting streams of a deleted user get 204.
        async with self.backend.write() as conn:
            result = await conn.execute(
                update(users)
                .where(
                    users.c.tenant_id == tenant_id,
                    users.c.user_id == user_id,
                    users.c.deleted_at.is_(None),
                )
                .values(deleted_at=time.time())
            )
        return bool(result.rowcount)

    async def list_users(self, tenant_id: str, limit: int | None = None) -> list[UserRecord]:
        """The tenant's users by id (the first ``limit`` of them, if given)."""
        stmt = (
            select(users)
            .where(users.c.tenant_id == tenant_id, users.c.deleted_at.is_(None))
            .order_by(users.c.user_id)
            .limit(limit)
        )
        async with self.backend.read() as conn:
            rows = (await conn.execute(stmt)).all()
        return [_user(r) for r in rows]

    async def put_role(self, role: str, permissions: Sequence[str], tenant_id: str | None) -> None:
        scope = tenant_id or GLOBAL_SCOPE
        values = {"permissions": dumps(sorted(set(permissions))), "updated_at": time.time()}
        async with self.backend.write() as conn:
            await upsert(conn, roles, {"tenant_id": scope, "role": role}, values)

    async def role_defaults(self, tenant_id: str) -> dict[str, frozenset[str]]:
        """Global role defaults, overridden role by role for the tenant."""
        async with self.backend.read() as conn:
            rows = (
                await conn.execute(
                    select(roles.c.tenant_id, roles.c.role, roles.c.permissions).where(
                        roles.c.tenant_id.in_([GLOBAL_SCOPE, tenant_id])
                    )
                )
            ).all()
        merged: dict[str, frozenset[str]] = {}
        for scope in (GLOBAL_SCOPE, tenant_id):
            for row_scope, role, perms in rows:
                if row_scope == scope:
                    merged[role] = frozenset(orjson.loads(perms))
        return merged

    async def member_counts(self, tenant_ids: Sequence[str]) -> dict[str, tuple[int, int]]:
        """Per tenant named: (users, live API keys: neither revoked nor
        expired), in two grouped queries whatever the number of tenants."""
        if not tenant_ids:
            return {}
        named = list(tenant_ids)
        live_users = (
            select(users.c.tenant_id, func.count())
            .where(users.c.tenant_id.in_(named), users.c.deleted_at.is_(None))
            .group_by(users.c.tenant_id)
        )
        live_keys = (
            select(api_keys.c.tenant_id, func.count())
            .where(
                api_keys.c.tenant_id.in_(named),
                api_keys.c.revoked_at.is_(None),
                or_(api_keys.c.expires_at.is_(None), api_keys.c.expires_at > time.time()),
            )
            .group_by(api_keys.c.tenant_id)
        )
        async with self.backend.read() as conn:
            user_counts = {t: int(n) for t, n in (await conn.execute(live_users)).all()}
            key_counts = {t: int(n) for t, n in (await conn.execute(live_keys)).all()}
        return {t: (user_counts.get(t, 0), key_counts.get(t, 0)) for t in named}

    async def create_api_key(self, record: ApiKeyRecord) -> None:
        async with self.backend.write() as conn:
            await conn.execute(
                insert(api_keys).values(
                    id=record.id,
                    key_hash=record.key_hash,
                    name=record.name,
                    scopes=dumps(sorted(record.scopes)),
                    tenant_id=record.tenant_id,
                    created_at=record.created_at,
                    revoked_at=record.revoked_at,
                    expires_at=record.expires_at,
                    last_used_at=record.last_used_at,
                    publish_rate=record.publish_rate,
                )
            )

    async def get_api_key(self, key_hash: str) -> ApiKeyRecord | None:
        return await self._one_key(api_keys.c.key_hash == key_hash)

    async def get_api_key_by_id(self, key_id: str) -> ApiKeyRecord | None:
        return await self._one_key(api_keys.c.id == key_id)

    async def _one_key(self, condition: ColumnElement[bool]) -> ApiKeyRecord | None:
        async with self.backend.read() as conn:
            row = (await conn.execute(select(api_keys).where(condition))).first()
        return None if row is None else _api_key(row)

    async def list_api_keys(self, tenant_id: str | None) -> list[ApiKeyRecord]:
        """Keys of ``tenant_id`` (None: every key), newest first."""
        stmt = select(api_keys).order_by(api_keys.c.created_at.desc(), api_keys.c.id)
        if tenant_id is not None:
            stmt = stmt.where(api_keys.c.tenant_id == tenant_id)
        async with self.backend.read() as conn:
            rows = (await conn.execute(stmt)).all()
        return [_api_key(r) for r in rows]

    async def revoke_api_key(self, key_id: str, at: float) -> bool:
        async with self.backend.write() as conn:
            result = await conn.execute(
                update(api_keys)
                .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=at)
            )
        return bool(result.rowcount)

    async def mark_api_keys_used(self, used: Mapping[str, float]) -> None:
        """Record when keys were last used (a batch, off the request path)."""
        if not used:
            return
        async with self.backend.write() as conn:
            for key_id, at in used.items():
                await conn.execute(
                    update(api_keys).where(api_keys.c.id == key_id).values(last_used_at=at)
                )

    async def create_ticket(
        self,
        ticket_hash: str,
        tenant_id: str,
        user_id: str,
        expires_at: float,
        session_expires_at: float | None = None,
    ) -> None:
        async with self.backend.write() as conn:
            await conn.execute(
                delete(stream_tickets).where(stream_tickets.c.expires_at < time.time() - 3600)
            )
            await conn.execute(
                insert(stream_tickets).values(
                    ticket_hash=ticket_hash,
                    tenant_id=tenant_id,
                    user_id=user_id,
                    expires_at=expires_at,
                    session_expires_at=session_expires_at,
                )
            )

    async def consume_ticket(
        self, ticket_hash: str, now: float
    ) -> tuple[str, str, float | None] | None:
        async with self.backend.write() as conn:
            result = await conn.execute(
                update(stream_tickets)
                .where(
                    stream_tickets.c.ticket_hash == ticket_hash,
                    stream_tickets.c.used_at.is_(None),
                    stream_tickets.c.expires_at > now,
                )
                .values(used_at=now)
            )
            if result.rowcount != 1:
                return None
            row = (
                await conn.execute(
                    select(
                        stream_tickets.c.tenant_id,
                        stream_tickets.c.user_id,
                        stream_tickets.c.session_expires_at,
                    ).where(stream_tickets.c.ticket_hash == ticket_hash)
                )
            ).one()
        return row[0], row[1], row[2]


def _tenant(row: Any) -> TenantRecord:
    return TenantRecord(
        id=row.id,
        name=row.name,
        state=row.state,
        settings=orjson.loads(row.settings),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _api_key(row: Any) -> ApiKeyRecord:
    return ApiKeyRecord(
        id=row.id,
        key_hash=row.key_hash,
        name=row.name,
        scopes=frozenset(orjson.loads(row.scopes)),
        tenant_id=row.tenant_id,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
        expires_at=row.expires_at,
        last_used_at=row.last_used_at,
        publish_rate=row.publish_rate,
    )


def _user(row: Any) -> UserRecord:
    return UserRecord(
        tenant_id=row.tenant_id,
        user_id=row.user_id,
        system_role=row.system_role,
        grants=frozenset(orjson.loads(row.grants)),
        revokes=frozenset(orjson.loads(row.revokes)),
        resources=frozenset(orjson.loads(row.resources)),
        platform=bool(row.platform),
        platform_tenants=tuple(orjson.loads(row.platform_tenants)),
    )
