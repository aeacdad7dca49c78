"""Single-use stream tickets: how a browser, which cannot set an
``Authorization`` header on an ``EventSource``, opens a stream as a user.

A ticket is issued to a user's token and redeemed once, before its
``ttl_s`` runs out, for a principal of that user (never more than the
token's own session: the ticket carries the token's expiry). Only the
ticket's hash is stored; redeeming consumes it atomically, so a ticket
never opens two streams.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from tidings.errors import Unauthorized
from tidings.services.access import authorized_user
from tidings.services.auth import Principal, hash_secret, new_ticket
from tidings.store.ports import Directory

UserPrincipal = Callable[[str, str, float | None], Awaitable[Principal]]


class Tickets:
    """Issue and redeem stream tickets.

    Uses the store's ``Directory`` role (the ticket rows) and
    ``user_principal`` (:meth:`tidings.services.auth.Authenticator.user_principal`:
    the user as stored now, refused when deleted or its tenant closed).
    """

    def __init__(
        self,
        store: Directory,
        user_principal: UserPrincipal,
        *,
        ttl_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._user_principal = user_principal
        self.ttl_s = ttl_s
        self._clock = clock

    async def issue(self, principal: Principal) -> str:
        """A new ticket for the calling user, valid for ``ttl_s``."""
        user = authorized_user(principal, "events.ticket")
        ticket = new_ticket()
        await self._store.create_ticket(
            hash_secret(ticket),
            user.tenant_id,
            user.user_id,
            self._clock() + self.ttl_s,
            session_expires_at=principal.expires_at,
        )
        return ticket

    async def redeem(self, ticket: str) -> Principal:
        """The ticket's user, once (:class:`Unauthorized` when unknown,
        expired or used)."""
        claimed = await self._store.consume_ticket(hash_secret(ticket), self._clock())
        if claimed is None:
            raise Unauthorized("unknown, expired or already used stream ticket")
        tenant_id, user_id, session_expires_at = claimed
        return await self._user_principal(tenant_id, user_id, session_expires_at)
