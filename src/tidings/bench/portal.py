"""The portal scenario (``tidings bench --scenarios portal``): seed 004's
portal with its embedded hub in its own process (the server's core), 10
organisations of 10 users each (a landlord, a contractor and 8 renters,
each renter with a property), every user's page stream open (100 streams,
the SDK's :class:`~tidings.sdk.subscriber.Subscriber`, as ``tidings.js``
opens them: a stream ticket per connection), and 50 ticket operations per
second through the portal's HTTP API for ``duration_s`` seconds:

* a renter creates a ticket: timed to its ``ticket.created`` on the
  organisation's landlord's stream;
* a landlord triages one of those tickets: timed to its
  ``ticket.status_changed`` on the renter's stream.

Measured, from "just before the API request is sent" to "the other user's
stream has parsed the event" (one process, one clock): p50/p99 per kind
and overall; the API calls' own latency (the portal's transaction with
its outbox row); events not seen within :data:`SETTLE_S`; the server's CPU.
The outbox relay's throughput beside a direct ``publish_many`` is the
``outbox`` scenario (:mod:`tidings.bench.outbox`): ``tidings bench
--scenarios portal,outbox``. Printed, never asserted.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tidings.bench import servers
from tidings.bench.stats import CpuMeter, latency_summary
from tidings.sdk.subscriber import Subscriber

FULL = {"organisations": 10, "users_per_organisation": 10, "rate": 50, "duration_s": 20}
QUICK = {"organisations": 3, "users_per_organisation": 5, "rate": 20, "duration_s": 4}
SETTLE_S = 10.0  # how long an operation's event may take before it counts as missing
PASSWORD = "bench-password"
ADMIN_KEY = "bench-admin-" + "k" * 24
JWT_SECRET = "bench-jwt-" + "s" * 32
START_TIMEOUT_S = 120.0


@dataclass(frozen=True, slots=True)
class Account:
    email: str
    user_id: str
    role: str
    organisation: str


@dataclass(frozen=True, slots=True)
class World:
    """Who exists: per organisation, its landlord, contractor and renters."""

    landlords: dict[str, Account]
    renters: dict[str, list[Account]]
    contractors: list[Account]

    @property
    def everyone(self) -> list[Account]:
        renters = [r for group in self.renters.values() for r in group]
        return [*self.landlords.values(), *self.contractors, *renters]


def plan(organisations: int, per_organisation: int) -> World:
    """The accounts to seed: a landlord, a contractor and renters per organisation."""
    landlords: dict[str, Account] = {}
    renters: dict[str, list[Account]] = {}
    contractors: list[Account] = []
    for o in range(1, organisations + 1):
        org = f"bench-org-{o}"
        landlords[org] = Account(f"landlord{o}@bench.example", f"ll-{o}", "LANDLORD", org)
        contractors.append(Account(f"contractor{o}@bench.example", f"co-{o}", "CONTRACTOR", org))
        renters[org] = [
            Account(f"renter{o}-{r}@bench.example", f"re-{o}-{r}", "TENANT", org)
            for r in range(1, max(1, per_organisation - 2) + 1)
        ]
    return World(landlords, renters, contractors)


def env_for(tmp: Path) -> dict[str, str]:
    return {
        **os.environ,
        "TIDINGS_DATABASE_URL": f"sqlite:///{tmp / 'hub.db'}",
        "TIDINGS_PORTAL_DATABASE_URL": f"sqlite:///{tmp / 'portal.db'}",
        "TIDINGS_ADMIN_KEY": ADMIN_KEY,
        "TIDINGS_JWT_SECRET": JWT_SECRET,
        "TIDINGS_LOG_LEVEL": "warning",
        "TIDINGS_SQLITE_SYNCHRONOUS": "NORMAL",
    }


async def seed(env: dict[str, str], world: World) -> None:
    """Organisations, properties, tenancies and accounts, written with the
    portal's own code before its server starts (the same database files)."""
    from tidings.portal import tables
    from tidings.portal.app import build_portal, running
    from tidings.portal.settings import from_env

    async with running(build_portal(from_env(env))) as portal:
        async with portal.engine.begin() as conn:
            for org, renters in world.renters.items():
                await conn.execute(tables.organisations.insert().values(id=org, name=org))
                await conn.execute(
                    tables.properties.insert(),
                    [
                        {"id": f"prop-{r.user_id}", "organisation_id": org, "address": r.user_id}
                        for r in renters
                    ],
                )
        for org in world.renters:
            await portal.accounts.sync.organisation(org, org)
        for account in world.everyone:
            await portal.accounts.create(
                email=account.email,
                name=account.user_id,
                role=account.role,
                organisation_id=account.organisation,
                password=PASSWORD,
                user_id=account.user_id,
            )
        async with portal.engine.begin() as conn:
            for org, renters in world.renters.items():
                await conn.execute(
                    tables.tenancies.insert(),
                    [
                        {
                            "id": f"ten-{r.user_id}",
                            "organisation_id": org,
                            "property_id": f"prop-{r.user_id}",
                            "renter_id": r.user_id,
                            "start_date": "2026-01-01",
                            "rent_cents": 100_000,
                        }
                        for r in renters
                    ],
                )
        for renters in world.renters.values():
            for renter in renters:
                await portal.accounts.resync(renter.user_id)  # the property: a resource


@contextlib.contextmanager
def portal_server(env: dict[str, str], tmp: Path) -> Iterator[tuple[str, int]]:
    """``python -m tidings.portal`` on the server's core; (url, pid)."""
    port = servers.free_port()
    log = open(tmp / "portal.log", "wb")  # noqa: SIM115 - closed below
    command = [sys.executable, "-m", "tidings.portal", "--port", str(port)]
    proc = subprocess.Popen(
        servers.pinned(command, servers.SERVER_CORE), env=env, stdout=log, stderr=log
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the portal exited: {(tmp / 'portal.log').read_text()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("the portal did not become ready")
            time.sleep(0.1)
        yield url, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@dataclass
class Watch:
    """Arrival times of (event type, ticket id) on each user's stream."""

    seen: dict[tuple[str, str, str], float] = field(default_factory=dict)
    connected: int = 0
    waiters: dict[tuple[str, str, str], asyncio.Future[float]] = field(default_factory=dict)

    def arrived(self, user: str, event: dict[str, Any]) -> None:
        ticket = (event.get("data") or {}).get("ticketId")
        if not isinstance(ticket, str):
            return
        key = (user, str(event.get("type")), ticket)
        at = time.perf_counter()
        self.seen.setdefault(key, at)
        waiter = self.waiters.pop(key, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(at)

    def wait_for(self, user: str, event_type: str, ticket: str) -> asyncio.Future[float]:
        key = (user, event_type, ticket)
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        if key in self.seen:
            future.set_result(self.seen[key])
        else:
            self.waiters[key] = future
        return future


async def follow(url: str, account: Account, token: str, watch: Watch) -> None:
    async with Subscriber(url, token=token, types="ticket.*", control=True) as events:
        async for event in events:
            if event.get("type") == "connected":
                watch.connected += 1
            else:
                watch.arrived(account.user_id, event)


@contextlib.asynccontextmanager
async def streams(
    url: str, world: World, tokens: dict[str, str], watch: Watch
) -> AsyncIterator[None]:
    tasks = [asyncio.create_task(follow(url, a, tokens[a.email], watch)) for a in world.everyone]
    try:
        deadline = time.monotonic() + 60
        while watch.connected < len(tasks) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


@dataclass
class Timings:
    created: list[float] = field(default_factory=list)  # API call -> landlord's stream
    triaged: list[float] = field(default_factory=list)  # API call -> renter's stream
    api: list[float] = field(default_factory=list)
    missing: int = 0
    errors: dict[str, int] = field(default_factory=dict)

    def error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1


async def create_ticket(
    http: httpx.AsyncClient,
    renter: Account,
    landlord: Account,
    n: int,
    tokens: dict[str, str],
    watch: Watch,
    timings: Timings,
    open_tickets: list[tuple[str, Account, Account]],
) -> None:
    started = time.perf_counter()
    answer = await http.post(
        "/api/tickets",
        json={"title": f"Bench ticket {n}", "priority": "LOW"},
        headers={"Authorization": f"Bearer {tokens[renter.email]}"},
    )
    timings.api.append(time.perf_counter() - started)
    if answer.status_code != 201:
        timings.error(f"create {answer.status_code}")
        return
    ticket = answer.json()["id"]
    try:
        at = await asyncio.wait_for(
            watch.wait_for(landlord.user_id, "ticket.created", ticket), SETTLE_S
        )
    except TimeoutError:
        timings.missing += 1
        return
    timings.created.append(at - started)
    open_tickets.append((ticket, renter, landlord))


async def triage_ticket(
    http: httpx.AsyncClient,
    ticket: str,
    renter: Account,
    landlord: Account,
    tokens: dict[str, str],
    watch: Watch,
    timings: Timings,
) -> None:
    started = time.perf_counter()
    answer = await http.patch(
        f"/api/tickets/{ticket}/status",
        json={"to": "TRIAGED"},
        headers={"Authorization": f"Bearer {tokens[landlord.email]}"},
    )
    timings.api.append(time.perf_counter() - started)
    if answer.status_code != 200:
        timings.error(f"triage {answer.status_code}")
        return
    try:
        at = await asyncio.wait_for(
            watch.wait_for(renter.user_id, "ticket.status_changed", ticket), SETTLE_S
        )
    except TimeoutError:
        timings.missing += 1
        return
    timings.triaged.append(at - started)


async def operate(url: str, world: World, params: dict[str, Any], pid: int) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as http:
        tokens: dict[str, str] = {}
        for account in world.everyone:
            answer = await http.post(
                "/api/auth/login", json={"email": account.email, "password": PASSWORD}
            )
            answer.raise_for_status()
            tokens[account.email] = answer.json()["accessToken"]
        watch, timings = Watch(), Timings()
        async with streams(url, world, tokens, watch):
            open_tickets: list[tuple[str, Account, Account]] = []
            renters = itertools.cycle(
                [(r, world.landlords[org]) for org, group in world.renters.items() for r in group]
            )
            interval = 1.0 / params["rate"]
            total = int(params["rate"] * params["duration_s"])
            cpu = CpuMeter(pid)
            began = time.perf_counter()
            cpu.start(began)
            running: list[asyncio.Task[None]] = []
            for n in range(total):
                await asyncio.sleep(max(0.0, began + n * interval - time.perf_counter()))
                if n % 2 == 1 and open_tickets:
                    ticket, renter, landlord = open_tickets.pop(0)
                    work = triage_ticket(http, ticket, renter, landlord, tokens, watch, timings)
                else:
                    renter, landlord = next(renters)
                    work = create_ticket(
                        http, renter, landlord, n, tokens, watch, timings, open_tickets
                    )
                running.append(asyncio.create_task(work))
            offered_s = time.perf_counter() - began
            await asyncio.gather(*running)
            server_cpu = cpu.percent(time.perf_counter())
    both = timings.created + timings.triaged
    return {
        "users": len(world.everyone),
        "streams_connected": watch.connected,
        "operations": total,
        "offered_per_s": round(total / offered_s, 1),
        "latency": latency_summary(both),
        "latency_created": latency_summary(timings.created),
        "latency_triaged": latency_summary(timings.triaged),
        "api": latency_summary(timings.api),
        "missing": timings.missing,
        "errors": timings.errors,
        "server_cpu_pct": server_cpu,
    }


def run(quick: bool) -> dict[str, Any]:
    params = dict(QUICK if quick else FULL)
    world = plan(params["organisations"], params["users_per_organisation"])
    with tempfile.TemporaryDirectory(prefix="tidings-bench-portal-") as folder:
        tmp = Path(folder)
        env = env_for(tmp)
        asyncio.run(seed(env, world))
        with portal_server(env, tmp) as (url, pid):
            result = asyncio.run(operate(url, world, params, pid))
    result["params"] = params
    return result


if __name__ == "__main__":
    import json

    print(json.dumps(run("--quick" in sys.argv), indent=2))
