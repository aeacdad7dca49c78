"""Passwords: argon2id hashes that match only their password, an unknown
user costing the same verification, and the hashing done in a worker
thread, never on the event loop (a flood of logins must not stall the
streams served by the same loop)."""

from __future__ import annotations

import asyncio
import threading

import pytest
from argon2 import PasswordHasher

from tidings.portal import auth


class RecordingHasher(PasswordHasher):
    """A real argon2 hasher that notes the thread each call ran on."""

    threads: list[int]

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        self.threads.append(threading.get_ident())
        return super().hash(password, salt=salt)

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        self.threads.append(threading.get_ident())
        return super().verify(hash, password)


def test_a_hash_matches_its_password_only() -> None:
    async def check() -> None:
        hashed = await auth.hash_password("password123")
        assert hashed.startswith("$argon2id$")
        assert await auth.password_matches(hashed, "password123")
        assert not await auth.password_matches(hashed, "password124")
        assert not await auth.password_matches(None, "no user has this password")
        assert not await auth.password_matches("not a hash", "password123")

    asyncio.run(check())


def test_hashing_runs_off_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    hasher = RecordingHasher()
    hasher.threads = []
    monkeypatch.setattr(auth, "_hasher", hasher)

    async def check() -> int:
        hashed = await auth.hash_password("password123")
        await asyncio.gather(*(auth.password_matches(hashed, "x") for _ in range(4)))
        return threading.get_ident()

    loop_thread = asyncio.run(check())
    assert len(hasher.threads) == 5
    assert loop_thread not in hasher.threads
