"""The lifecycles role in SQL: one compare-and-set for tenants and entities."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import orjson
from sqlalchemy import insert, select, update
from sqlalchemy.sql.dml import UpdateBase

from tidings.errors import Conflict
from tidings.store.records import AppendOutcome, LifecycleChange, NewEvent
from tidings.store.schema import entity_states, lifecycle_log, state_machines, tenants
from tidings.store.sql.common import SQLRole, Step, dumps, upsert


class SQLLifecycles(SQLRole):
    async def transition_tenant(
        self, tenant_id: str, from_state: str, change: LifecycleChange, event: NewEvent | None
    ) -> AppendOutcome:
        """Move a tenant from ``from_state`` (compare-and-set: a concurrent
        change raises Conflict), record the lifecycle row and append its
        event, all in one transaction."""
        now = time.time()
        cas = (
            update(tenants)
            .where(tenants.c.id == tenant_id, tenants.c.state == from_state)
            .values(state=change.to_state, updated_at=now)
        )
        return await self._transition(
            ("tenant", tenant_id, tenant_id), from_state, change, event, cas, now
        )

    async def transition_entity(
        self,
        entity: tuple[str, str, str],
        from_state: str,
        change: LifecycleChange,
        event: NewEvent | None,
        *,
        exists: bool,
    ) -> AppendOutcome:
        """The same for any machine-driven entity ``(type, tenant, id)``;
        ``exists`` False: it has no row yet (it is in its initial state)."""
        entity_type, tenant_id, entity_id = entity
        now = time.time()
        cas: UpdateBase
        if exists:
            cas = (
                update(entity_states)
                .where(
                    entity_states.c.entity_type == entity_type,
                    entity_states.c.tenant_id == tenant_id,
                    entity_states.c.entity_id == entity_id,
                    entity_states.c.state == from_state,
                )
                .values(state=change.to_state, updated_at=now)
            )
        else:  # created by whichever transition commits first
            cas = self.backend.insert_new(entity_states).values(
                entity_type=entity_type,
                tenant_id=tenant_id,
                entity_id=entity_id,
                state=change.to_state,
                updated_at=now,
            )
        return await self._transition(entity, from_state, change, event, cas, now)

    async def _transition(
        self,
        entity: tuple[str, str, str],
        from_state: str,
        change: LifecycleChange,
        event: NewEvent | None,
        cas: UpdateBase,
        now: float,
    ) -> AppendOutcome:
        """The one compare-and-set: ``cas`` must change exactly one row, or
        nothing commits and Conflict is raised."""
        entity_type, tenant_id, entity_id = entity
        history = insert(lifecycle_log).values(
            entity_type=entity_type,
            tenant_id=tenant_id,
            entity_id=entity_id,
            from_state=from_state,
            to_state=change.to_state,
            reason=change.reason,
            triggered_by=change.triggered_by,
            trigger_source=change.trigger_source,
            event_id=event.event.id if event is not None else None,
            created_at=now,
        )
        moved = Conflict(
            f"{entity_type} {entity_id!r} is no longer {from_state or 'new'}; reload and retry"
        )
        steps = (Step(cas, unless_one=moved), Step(history))
        return await self.backend.append(
            [event] if event is not None else [], self.jobs.rules, steps
        )

    async def entity_state(self, entity_type: str, tenant_id: str, entity_id: str) -> str | None:
        stmt = select(entity_states.c.state).where(
            entity_states.c.entity_type == entity_type,
            entity_states.c.tenant_id == tenant_id,
            entity_states.c.entity_id == entity_id,
        )
        async with self.backend.read() as conn:
            state: str | None = (await conn.execute(stmt)).scalar_one_or_none()
        return state

    async def put_state_machine(self, entity_type: str, spec: Mapping[str, Any]) -> None:
        values = {"spec": dumps(dict(spec)), "updated_at": time.time()}
        async with self.backend.write() as conn:
            await upsert(conn, state_machines, {"entity_type": entity_type}, values)

    async def get_state_machine(self, entity_type: str) -> dict[str, Any] | None:
        stmt = select(state_machines.c.spec).where(state_machines.c.entity_type == entity_type)
        async with self.backend.read() as conn:
            spec = (await conn.execute(stmt)).scalar_one_or_none()
        return None if spec is None else dict(orjson.loads(spec))

    async def lifecycle(
        self, entity_type: str, tenant_id: str, entity_id: str
    ) -> list[dict[str, Any]]:
        stmt = (
            select(lifecycle_log)
            .where(
                lifecycle_log.c.entity_type == entity_type,
                lifecycle_log.c.tenant_id == tenant_id,
                lifecycle_log.c.entity_id == entity_id,
            )
            .order_by(lifecycle_log.c.id)
        )
        async with self.backend.read() as conn:
            rows = (await conn.execute(stmt)).all()
        return [dict(r._mapping) for r in rows]
