"""Where an operator command runs: on the database (a node started in this
process, acting as the operator, like ``tidings migrate``) or on a running
server over HTTP (``--url``, with the caller's key: its automation API,
under that key's authorization).

Both targets answer in the HTTP API's JSON shapes (``rule_json``,
``job_json``, the replay report), so a command prints the same thing
either way. Errors are :class:`~tidings.errors.TidingsError`: an
unreachable server is :class:`~tidings.errors.Unavailable`, a refused key
:class:`~tidings.errors.Unauthorized`, a missing rule
:class:`~tidings.errors.NotFound` (the CLI prints each as one line).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from tidings.errors import InvalidInput, TidingsError

if TYPE_CHECKING:
    from tidings.config import Settings
    from tidings.node import Tidings
    from tidings.sdk.client import AsyncTidingsClient

T = TypeVar("T")
Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class JobQuery:
    status: str | None = None  # a comma list of job states
    tenant_id: str | None = None
    rule_id: str | None = None
    limit: int = 50


@dataclass(frozen=True, slots=True)
class ReplayQuery:
    since: float
    until: float
    tenant_id: str | None = None
    rule_id: str | None = None
    dry_run: bool = False
    force: bool = False


class Automation(Protocol):
    """The automation use cases an operator command calls."""

    async def list_rules(self, tenant_id: str | None) -> list[dict[str, Any]]: ...
    async def get_rule(self, rule_id: str) -> dict[str, Any]: ...
    async def create_rule(self, body: Mapping[str, Any]) -> dict[str, Any]: ...
    async def delete_rule(self, rule_id: str) -> None: ...
    async def test_rule(self, rule_id: str, event: Mapping[str, Any]) -> dict[str, Any]: ...
    async def install_pack(self, pack: str, tenant_id: str | None) -> list[dict[str, Any]]: ...
    async def list_jobs(self, query: JobQuery) -> list[dict[str, Any]]: ...
    async def retry_jobs(self, ids: Sequence[int]) -> int: ...
    async def discard_jobs(self, ids: Sequence[int], reason: str) -> int: ...
    async def replay(self, query: ReplayQuery, progress: Progress) -> dict[str, Any]: ...


class OnDatabase:
    """The use cases on a node of this process, as the operator."""

    def __init__(self, tidings: Tidings) -> None:
        from tidings.services.auth import OPERATOR

        self.tidings = tidings
        self.operator = OPERATOR

    def _rule(self, record: Any) -> dict[str, Any]:
        from tidings.automation.rules import rule_json

        return rule_json(record, self.tidings.actions)

    async def list_rules(self, tenant_id: str | None) -> list[dict[str, Any]]:
        records = await self.tidings.rules.list_rules(self.operator, tenant_id)
        return [self._rule(r) for r in records]

    async def get_rule(self, rule_id: str) -> dict[str, Any]:
        return self._rule(await self.tidings.rules.get(self.operator, rule_id))

    async def create_rule(self, body: Mapping[str, Any]) -> dict[str, Any]:
        saved = await self.tidings.rules.create(self.operator, dict(body), author="cli")
        shown = self._rule(saved.record)
        if saved.secret is not None:
            shown["secret"] = saved.secret
        return shown

    async def delete_rule(self, rule_id: str) -> None:
        await self.tidings.rules.delete(self.operator, rule_id)

    async def test_rule(self, rule_id: str, event: Mapping[str, Any]) -> dict[str, Any]:
        return await self.tidings.rules.test(self.operator, rule_id, dict(event))

    async def install_pack(self, pack: str, tenant_id: str | None) -> list[dict[str, Any]]:
        from tidings.automation.packs import read_pack

        records = await self.tidings.rules.install(self.operator, read_pack(pack), tenant_id)
        return [self._rule(r) for r in records]

    async def list_jobs(self, query: JobQuery) -> list[dict[str, Any]]:
        from tidings.services.jobs import job_json, parse_statuses
        from tidings.store.base import JobFilter

        wanted = JobFilter(
            statuses=parse_statuses(query.status), rule_id=query.rule_id, limit=query.limit
        )
        jobs = await self.tidings.jobs.list_jobs(
            self.operator, wanted, tenant_id=query.tenant_id, history=True
        )
        return [job_json(j) for j in jobs]

    async def retry_jobs(self, ids: Sequence[int]) -> int:
        return await self.tidings.jobs.retry_many(self.operator, list(ids))

    async def discard_jobs(self, ids: Sequence[int], reason: str) -> int:
        return await self.tidings.jobs.discard_many(self.operator, list(ids), reason)

    async def replay(self, query: ReplayQuery, progress: Progress) -> dict[str, Any]:
        report = await self.tidings.jobs.replay(
            self.operator,
            since=query.since,
            until=query.until,
            tenant_id=query.tenant_id,
            rule_id=query.rule_id,
            dry_run=query.dry_run,
            force=query.force,
            progress=progress,
        )
        return report.to_json()


class OnServer:
    """The same use cases through a running server's HTTP API."""

    def __init__(self, client: AsyncTidingsClient) -> None:
        self.client = client

    async def list_rules(self, tenant_id: str | None) -> list[dict[str, Any]]:
        return await self.client.list_rules(tenant_id)

    async def get_rule(self, rule_id: str) -> dict[str, Any]:
        return await self.client.get_rule(rule_id)

    async def create_rule(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return await self.client.create_rule({"author": "cli", **body})

    async def delete_rule(self, rule_id: str) -> None:
        await self.client.delete_rule(rule_id)

    async def test_rule(self, rule_id: str, event: Mapping[str, Any]) -> dict[str, Any]:
        return await self.client.test_rule(rule_id, event)

    async def install_pack(self, pack: str, tenant_id: str | None) -> list[dict[str, Any]]:
        from tidings.automation.packs import read_pack, shipped_packs

        if pack in shipped_packs():  # the server's own copy
            return await self.client.install_rule_pack(pack, tenant_id)
        document = read_pack(pack)  # a file here: its pack is sent
        sent: dict[str, Any] = {
            key: document[key] for key in ("name", "description", "rules") if key in document
        }
        return await self.client.install_own_rule_pack(sent, tenant_id)

    async def list_jobs(self, query: JobQuery) -> list[dict[str, Any]]:
        page = await self.client.list_jobs(
            status=query.status,
            tenant_id=query.tenant_id,
            rule_id=query.rule_id,
            limit=query.limit,
        )
        return list(page["items"])

    async def retry_jobs(self, ids: Sequence[int]) -> int:
        return await self.client.retry_jobs(ids)

    async def discard_jobs(self, ids: Sequence[int], reason: str) -> int:
        return await self.client.discard_jobs(ids, reason)

    async def replay(self, query: ReplayQuery, progress: Progress) -> dict[str, Any]:
        # The server replays in one request and reports at the end: no progress.
        return await self.client.replay(
            f"{query.since:.6f}",  # epoch seconds as the API reads them (six decimals)
            f"{query.until:.6f}",
            tenant_id=query.tenant_id,
            rule_id=query.rule_id,
            dry_run=query.dry_run,
            force=query.force,
        )


def on_node(settings: Settings, work: Callable[[Tidings], Awaitable[T]]) -> T:
    """Run ``work`` against a node started in this process (no HTTP; no
    worker unless ``settings`` ask for one)."""
    from tidings.node import Tidings

    async def run() -> T:
        tidings = Tidings(settings)
        await tidings.start()
        try:
            return await work(tidings)
        finally:
            await tidings.stop()

    return asyncio.run(run())


def on_server(url: str, key: str | None, work: Callable[[OnServer], Awaitable[T]]) -> T:
    """Run ``work`` against the server at ``url`` with the bearer ``key``."""
    import httpx

    from tidings.sdk.client import AsyncTidingsClient

    async def run() -> T:
        try:
            client = AsyncTidingsClient(url, token=key or None)
        except httpx.InvalidURL as exc:
            raise InvalidInput(f"--url {url!r}: {exc}", field="--url") from None
        async with client:
            return await work(OnServer(client))

    return asyncio.run(run())


def remote_error(url: str, error: TidingsError) -> str:
    """An error of ``on_server`` as one line: with the server's status when
    it answered (``error_from_response`` records it), else as it is
    (unreachable, or refused here before sending)."""
    status = vars(error).get("status")
    return f"{url} answered {status}: {error}" if status is not None else str(error)
