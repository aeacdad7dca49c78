"""Automation rules (DESIGN §4): the use cases behind ``/api/admin/rules``,
``/api/admin/rule-packs``, ``/api/admin/actions`` and ``tidings rules``.

Authorization (:mod:`tidings.services.access`): admin credentials only;
``rules.write`` to read one rule, create, replace, delete, dry-run and
rotate its secret, ``rules.list``, ``actions.list`` and
``rule_packs.list`` to look. A tenant-bound credential sees and changes
only its tenant's rules: a rule of another tenant (or a global one) looked
up by id answers 404, naming another tenant (or none: a global rule) in a
body 403. Every refusal comes before any write.

Follow-up signal: every change is announced by the rule book
(``rules_changed``), so every process applies it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tidings.automation.actions import ActionRegistry
from tidings.automation.packs import install_pack, read_pack, shipped_packs
from tidings.automation.rulebook import RuleBook, body_of
from tidings.core.patterns import TypeFilter
from tidings.errors import InvalidInput, NotFound
from tidings.services.access import authorize, in_scope
from tidings.services.auth import Principal
from tidings.services.history import History, LogRequest
from tidings.store.base import JobFilter, RuleRecord
from tidings.store.jobs import HEALTH_KEY

MAX_DRY_RUN_EVENTS = 500  # a dry run over the log reads at most this many events
MAX_STATS_RULES = 200  # rules whose job counts one listing looks up


@dataclass(frozen=True, slots=True)
class SavedRule:
    record: RuleRecord
    secret: str | None  # a webhook secret the server generated or rotated: shown this once


@dataclass(frozen=True, slots=True)
class RuleStats:
    """What a rule's jobs say about it (for the Integration Manager)."""

    counts: dict[str, int]  # jobs by status
    last_run: float | None  # when its newest job last changed (None: never ran)
    consecutive_failures: int  # its endpoint's current run of failures

    @property
    def failed(self) -> int:
        return self.counts.get("failed", 0) + self.counts.get("dead", 0)


@dataclass(frozen=True, slots=True)
class LogDryRun:
    """A rule tried against events of the log: one verdict per event."""

    events: list[dict[str, Any]]  # the envelopes, as the caller may see them
    verdicts: list[dict[str, Any]]  # :meth:`RuleBook.dry_run` of each

    @property
    def matched(self) -> int:
        return sum(1 for v in self.verdicts if v["matched"])


@dataclass(frozen=True, slots=True)
class PackInfo:
    name: str
    description: str


def author_of(principal: Principal) -> str:
    """Who a rule saved by ``principal`` is recorded as written by."""
    return principal.key_id or principal.kind


class Rules:
    """Uses the rule book (which uses the store's ``JobQueue`` role for
    rules) and the action registry (what rules can do)."""

    def __init__(
        self, rulebook: RuleBook, actions: ActionRegistry, *, history: History | None = None
    ) -> None:
        self.rulebook = rulebook
        self.actions = actions
        self._history = history  # the log a dry run over past events reads

    async def action_types(self, principal: Principal) -> tuple[list[dict[str, Any]], list[str]]:
        """The action types rules can use, and the named jobs of ``run_job``."""
        authorize(principal, "actions.list", scoped=False)
        return self.actions.describe(), sorted(self.actions.jobs)

    async def list_rules(
        self, principal: Principal, tenant_id: str | None = None
    ) -> list[RuleRecord]:
        """The rules in the caller's reach (only ``tenant_id``'s, if given)."""
        authorize(principal, "rules.list", scoped=False)
        return [
            r
            for r in await self.rulebook.store.jobs.list_rules()
            if in_scope(principal, r.tenant_id) and (tenant_id is None or r.tenant_id == tenant_id)
        ]

    async def get(self, principal: Principal, rule_id: str) -> RuleRecord:
        """One rule; 404 when missing, deleted or out of the caller's reach."""
        authorize(principal, "rules.write", scoped=False)
        record = await self.rulebook.require(rule_id)
        if not in_scope(principal, record.tenant_id):
            raise NotFound(f"no rule {rule_id!r}")  # not theirs: do not reveal it
        return record

    async def create(
        self, principal: Principal, body: Mapping[str, Any], *, author: str | None = None
    ) -> SavedRule:
        """Check and store a new rule (``body`` in the API's JSON form),
        written by ``author`` (default: the credential)."""
        authorize(principal, "rules.write", body.get("tenantId"), field="/tenantId")
        record, secret = await self.rulebook.save(body, author=author or author_of(principal))
        return SavedRule(record, secret)

    async def replace(
        self, principal: Principal, rule_id: str, body: Mapping[str, Any]
    ) -> SavedRule:
        """Replace a rule; the new scope must be in reach too."""
        await self.get(principal, rule_id)
        authorize(principal, "rules.write", body.get("tenantId"), field="/tenantId")
        record, secret = await self.rulebook.save(
            body, rule_id=rule_id, author=author_of(principal)
        )
        return SavedRule(record, secret)

    async def set_enabled(self, principal: Principal, rule_id: str, enabled: bool) -> RuleRecord:
        """Enable or disable a rule, nothing else changed (enabling starts a
        new count of failures)."""
        record = await self.get(principal, rule_id)
        body = {**body_of(record), "enabled": enabled}
        saved, _ = await self.rulebook.save(body, rule_id=rule_id, author=author_of(principal))
        return saved

    async def stats(self, principal: Principal, rules: list[RuleRecord]) -> dict[str, RuleStats]:
        """Job counts, last run and failure run of ``rules`` (the first
        :data:`MAX_STATS_RULES` of them: two indexed queries each)."""
        authorize(principal, "jobs.list", scoped=False)
        jobs = self.rulebook.store.jobs
        found: dict[str, RuleStats] = {}
        for rule in rules[:MAX_STATS_RULES]:
            if not in_scope(principal, rule.tenant_id):
                continue
            counts = await jobs.count_jobs(JobFilter(rule_id=rule.id))
            newest = await jobs.list_jobs(JobFilter(rule_id=rule.id, limit=1)) if counts else []
            health = rule.spec.get(HEALTH_KEY) or {}
            found[rule.id] = RuleStats(
                counts,
                newest[0].updated_at if newest else None,
                int(health.get("failures", 0)),
            )
        return found

    async def delete(self, principal: Principal, rule_id: str) -> None:
        """Delete a rule (its jobs stay, for the record)."""
        await self.rulebook.delete(await self.get(principal, rule_id))

    async def test_new(
        self, principal: Principal, body: Mapping[str, Any], sample: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Dry run of a rule not saved yet against ``sample``."""
        authorize(principal, "rules.write", body.get("tenantId"), field="/rule/tenantId")
        return self.rulebook.dry_run(body, sample)

    async def test(
        self, principal: Principal, rule_id: str, sample: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Dry run: would the stored rule fire for ``sample``, and with what
        rendered configuration? Runs nothing."""
        record = await self.get(principal, rule_id)
        stored = {
            "id": record.id,
            "name": record.name,
            "tenantId": record.tenant_id,
            "enabled": record.enabled,
            **record.spec,
        }
        return self.rulebook.dry_run(stored, sample)

    async def preview(
        self, principal: Principal, body: Mapping[str, Any], sample: Mapping[str, Any]
    ) -> dict[str, Any]:
        """The action of a rule (saved or not) rendered against ``sample``,
        whether or not it matches; runs nothing."""
        authorize(principal, "rules.write", body.get("tenantId"), field="/tenantId")
        return self.rulebook.preview(body, sample)

    async def test_log(
        self, principal: Principal, body: Mapping[str, Any], limit: int
    ) -> LogDryRun:
        """Dry run of a rule (saved or not) against the newest ``limit``
        (at most :data:`MAX_DRY_RUN_EVENTS`) events of the log its trigger
        type matches, in the rule's tenant (a global rule: every tenant in
        the caller's reach), as the caller may see them. Runs nothing."""
        tenant_id = body.get("tenantId")
        authorize(principal, "rules.write", tenant_id, field="/tenantId")
        if not 1 <= limit <= MAX_DRY_RUN_EVENTS:
            raise InvalidInput(f"choose 1 to {MAX_DRY_RUN_EVENTS} events", field="limit")
        if self._history is None:
            raise NotFound("this process has no event log to try rules against")
        trigger = body.get("trigger")
        pattern = trigger.get("type") if isinstance(trigger, Mapping) else None
        if not isinstance(pattern, str) or not pattern:
            raise InvalidInput("trigger.type is required", field="/trigger/type")
        self.rulebook.dry_run(body, {"type": pattern})  # check the rule before reading
        viewer = History.reader(principal, tenant_id)
        page = await self._history.page(
            viewer, LogRequest(types=TypeFilter((pattern,)), limit=limit)
        )
        return LogDryRun(page.items, self.rulebook.dry_run_many(body, page.items))

    async def rotate_secret(
        self, principal: Principal, rule_id: str, secret: str | None
    ) -> SavedRule:
        """A new webhook secret (``secret``, or generated); the old one keeps
        signing for a grace period."""
        record = await self.get(principal, rule_id)
        saved, fresh = await self.rulebook.rotate_secret(record, secret)
        return SavedRule(saved, fresh)

    async def packs(self, principal: Principal) -> list[PackInfo]:
        """The rule packs shipped with Tidings."""
        authorize(principal, "rule_packs.list", scoped=False)
        return [
            PackInfo(name, str(read_pack(name).get("description", ""))) for name in shipped_packs()
        ]

    async def install_shipped(
        self, principal: Principal, name: str, tenant_id: str | None
    ) -> list[RuleRecord]:
        """Install shipped pack ``name`` for ``tenant_id`` (None: global);
        idempotent."""
        authorize(principal, "rules.write", tenant_id, field="/tenantId")
        if name not in shipped_packs():
            raise NotFound(f"no rule pack {name!r}")
        return await install_pack(self.rulebook, read_pack(name), tenant_id, author_of(principal))

    async def install(
        self,
        principal: Principal,
        pack: dict[str, Any],
        tenant_id: str | None,
        *,
        author: str | None = None,
    ) -> list[RuleRecord]:
        """Install a pack already read (a shipped one or the host's file);
        its rules are authored ``pack:<name>`` unless ``author`` is given."""
        authorize(principal, "rules.write", tenant_id, field="/tenantId")
        return await install_pack(self.rulebook, pack, tenant_id, author)
