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
from tidings.automation.rulebook import RuleBook
from tidings.errors import NotFound
from tidings.services.access import authorize, in_scope
from tidings.services.auth import Principal
from tidings.store.base import RuleRecord


@dataclass(frozen=True, slots=True)
class SavedRule:
    record: RuleRecord
    secret: str | None  # a webhook secret the server generated or rotated: shown this once


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

    def __init__(self, rulebook: RuleBook, actions: ActionRegistry) -> None:
        self.rulebook = rulebook
        self.actions = actions

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
