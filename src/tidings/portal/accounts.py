"""The portal's users, and their sync into the hub (identity sync, seed 003).

The portal owns its users (email, name, password hash, role, organisation);
the hub gets what it derives audiences from, through the SDK with the
admin key: each organisation is a Tidings tenant, each portal role a
system role with default permissions (:data:`HUB_ROLE_PERMISSIONS`), a
renter's properties its ``resources``, and OPS a platform user over every
tenant. :meth:`Accounts.create` writes the row, then syncs the user, so a
user created later streams like the seeded ones.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tidings.errors import InvalidInput
from tidings.portal import tables
from tidings.portal.auth import OPS_TENANT, hash_password, hub_tenant_of
from tidings.sdk import AsyncTidingsClient

TENANT, LANDLORD, CONTRACTOR, OPS = "TENANT", "LANDLORD", "CONTRACTOR", "OPS"
ROLES = (TENANT, LANDLORD, CONTRACTOR, OPS)
# What each role's streams carry (the catalog pack's audiences): landlords
# see their organisation's tickets and invoices; contractors its tickets; OPS
# every organisation's tickets (a platform user); a renter sees its own
# tickets and invoices through user:<id> and resource:<property> audiences.
HUB_ROLE_PERMISSIONS: dict[str, list[str]] = {
    LANDLORD: ["tickets.read", "billing.read"],
    CONTRACTOR: ["tickets.read"],
    OPS: ["tickets.read"],
    TENANT: [],
}


def user_json(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "email": row.email,
        "name": row.name,
        "role": row.role,
        "organisationId": row.organisation_id,
        "landlordId": row.organisation_id,
    }


async def find_by_email(conn: AsyncConnection, email: str) -> Any:
    query = select(tables.users).where(tables.users.c.email == email.strip().lower())
    return (await conn.execute(query)).first()


async def get_user(conn: AsyncConnection, user_id: str) -> Any:
    query = select(tables.users).where(tables.users.c.id == user_id)
    return (await conn.execute(query)).first()


async def renter_properties(conn: AsyncConnection, renter_id: str) -> list[str]:
    query = select(tables.tenancies.c.property_id).where(tables.tenancies.c.renter_id == renter_id)
    return sorted({r for (r,) in (await conn.execute(query)).all()})


class IdentitySync:
    """Pushes organisations, roles and users into the hub (idempotent PUTs)."""

    def __init__(self, client: AsyncTidingsClient) -> None:
        self.client = client

    async def roles(self) -> None:
        for role, permissions in HUB_ROLE_PERMISSIONS.items():
            await self.client.put_role(role, permissions)

    async def organisation(self, organisation_id: str, name: str) -> None:
        await self.client.put_tenant(organisation_id, name)

    async def ops_home(self) -> None:
        await self.client.put_tenant(OPS_TENANT, "Operations")

    async def user(self, row: Any, resources: Sequence[str] = ()) -> None:
        tenant = hub_tenant_of(row.role, row.organisation_id)
        platform = row.role == OPS
        await self.client.put_user(
            tenant,
            row.id,
            row.role,
            resources=list(resources),
            platform=platform,
            platform_tenants=["*"] if platform else None,
        )


class Accounts:
    def __init__(self, engine: AsyncEngine, sync: IdentitySync) -> None:
        self.engine = engine
        self.sync = sync

    async def create(
        self,
        *,
        email: str,
        name: str,
        role: str,
        organisation_id: str | None,
        password: str,
        user_id: str | None = None,
    ) -> dict[str, Any]:
        """A new user, stored then synced to the hub; an existing email is
        returned as it is (seeding runs again)."""
        if role not in ROLES:
            raise InvalidInput(f"role must be one of {', '.join(ROLES)}", field="/role")
        if (role == OPS) != (organisation_id is None):
            raise InvalidInput("OPS has no organisation; every other role has one", field="/role")
        password_hash = await hash_password(password)
        async with self.engine.begin() as conn:
            existing = await find_by_email(conn, email)
            if existing is None:
                await conn.execute(
                    tables.users.insert().values(
                        id=user_id or "usr_" + secrets.token_hex(6),
                        email=email.strip().lower(),
                        name=name,
                        role=role,
                        organisation_id=organisation_id,
                        password_hash=password_hash,
                    )
                )
            row = await find_by_email(conn, email)
            resources = await renter_properties(conn, row.id)
        await self.sync.user(row, resources)
        return user_json(row)

    async def resync(self, user_id: str) -> None:
        """Sync a user again (e.g. a renter given a new tenancy's property)."""
        async with self.engine.connect() as conn:
            row = await get_user(conn, user_id)
            resources = await renter_properties(conn, user_id)
        if row is not None:
            await self.sync.user(row, resources)
