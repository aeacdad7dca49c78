"""Stream tickets against a small fake of the store's ticket rows: issued to
users only, stored as a hash, redeemed once before they expire, never for
longer than the token's session."""

from __future__ import annotations

from typing import Any

import pytest

from tidings.core.audience import UserRecord, Viewer
from tidings.errors import Forbidden, Unauthorized
from tidings.services.auth import OPERATOR, Principal, hash_secret
from tidings.services.tickets import Tickets

ANN = UserRecord("t1", "ann", "staff")
USER = Principal(
    kind="user",
    tenant_id="t1",
    user=ANN,
    viewer=Viewer.for_user(ANN, {}),
    expires_at=5000.0,
)


class FakeTickets:
    def __init__(self) -> None:
        self.rows: dict[str, tuple[str, str, float, float | None]] = {}

    async def create_ticket(
        self,
        ticket_hash: str,
        tenant_id: str,
        user_id: str,
        expires_at: float,
        session_expires_at: float | None = None,
    ) -> None:
        self.rows[ticket_hash] = (tenant_id, user_id, expires_at, session_expires_at)

    async def consume_ticket(
        self, ticket_hash: str, now: float
    ) -> tuple[str, str, float | None] | None:
        row = self.rows.pop(ticket_hash, None)
        if row is None or row[2] <= now:
            return None
        return row[0], row[1], row[3]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def parts() -> tuple[FakeTickets, Clock, list[Any]]:
    return FakeTickets(), Clock(), []


@pytest.fixture
def tickets(parts: tuple[FakeTickets, Clock, list[Any]]) -> Tickets:
    store, clock, redeemed = parts

    async def user_principal(tenant_id: str, user_id: str, expires_at: float | None) -> Principal:
        redeemed.append((tenant_id, user_id, expires_at))
        return USER

    return Tickets(store, user_principal, ttl_s=30.0, clock=clock)  # type: ignore[arg-type]


async def test_a_ticket_opens_one_stream_for_its_user(
    tickets: Tickets, parts: tuple[FakeTickets, Clock, list[Any]]
) -> None:
    store, _, redeemed = parts
    ticket = await tickets.issue(USER)
    assert list(store.rows) == [hash_secret(ticket)]  # never the ticket itself
    assert store.rows[hash_secret(ticket)] == ("t1", "ann", 1030.0, 5000.0)
    assert await tickets.redeem(ticket) is USER
    assert redeemed == [("t1", "ann", 5000.0)]  # the session's expiry travels with it
    with pytest.raises(Unauthorized):
        await tickets.redeem(ticket)


async def test_an_expired_ticket_is_refused(
    tickets: Tickets, parts: tuple[FakeTickets, Clock, list[Any]]
) -> None:
    _, clock, redeemed = parts
    ticket = await tickets.issue(USER)
    clock.now += 30.0
    with pytest.raises(Unauthorized):
        await tickets.redeem(ticket)
    assert redeemed == []


async def test_only_users_get_tickets(
    tickets: Tickets, parts: tuple[FakeTickets, Clock, list[Any]]
) -> None:
    store, _, _ = parts
    for principal in (OPERATOR, Principal(kind="key", scopes=frozenset({"publish"}))):
        with pytest.raises(Forbidden):
            await tickets.issue(principal)
    assert store.rows == {}
