"""The rules service with a small fake rule book: a rule of another tenant
is not found, a refused caller changes nothing, the author is the credential."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import pytest

from tidings.automation.actions import ActionRegistry
from tidings.errors import Forbidden, NotFound
from tidings.services.auth import Principal
from tidings.services.rules import Rules
from tidings.store.base import RuleRecord

OPERATOR = Principal(kind="admin", scopes=frozenset({"admin", "publish"}))
T1_ADMIN = Principal(kind="key", tenant_id="t1", scopes=frozenset({"admin"}), key_id="key_1")


def rule(rule_id: str, tenant_id: str | None) -> RuleRecord:
    return RuleRecord(
        id=rule_id,
        tenant_id=tenant_id,
        name=rule_id,
        spec={"trigger": {"type": "*"}, "action": {"type": "run_job", "config": {}}},
        priority=0,
        enabled=True,
        author=None,
        created_at=0.0,
        updated_at=0.0,
    )


class FakeRuleBook:
    """Records what a real rule book would be asked to store."""

    def __init__(self, *records: RuleRecord) -> None:
        self.records = {r.id: r for r in records}
        self.saved: list[tuple[str | None, str | None]] = []
        self.deleted: list[str] = []

    async def require(self, rule_id: str) -> RuleRecord:
        if rule_id not in self.records:
            raise NotFound(f"no rule {rule_id!r}")
        return self.records[rule_id]

    async def save(
        self, body: Mapping[str, Any], *, rule_id: str | None = None, author: str | None = None
    ) -> tuple[RuleRecord, str | None]:
        self.saved.append((rule_id, author))
        record = replace(rule(rule_id or "rul_new", body.get("tenantId")), author=author)
        return record, None

    async def delete(self, record: RuleRecord) -> None:
        self.deleted.append(record.id)


def service(*records: RuleRecord) -> tuple[Rules, FakeRuleBook]:
    book = FakeRuleBook(*records)
    return Rules(book, ActionRegistry()), book  # type: ignore[arg-type]


async def test_a_rule_is_authored_by_the_credential_unless_named() -> None:
    rules, book = service()
    saved = await rules.create(T1_ADMIN, {"tenantId": "t1"})
    assert saved.record.author == "key_1"
    await rules.create(OPERATOR, {"tenantId": None}, author="cli")
    assert book.saved == [(None, "key_1"), (None, "cli")]


async def test_a_tenant_credential_cannot_touch_global_or_other_rules() -> None:
    rules, book = service(rule("rul_g", None), rule("rul_t2", "t2"), rule("rul_t1", "t1"))
    for rule_id in ("rul_g", "rul_t2"):
        with pytest.raises(NotFound):  # their existence is not revealed
            await rules.delete(T1_ADMIN, rule_id)
    with pytest.raises(Forbidden):
        await rules.create(T1_ADMIN, {"tenantId": None})  # a global rule
    with pytest.raises(Forbidden):
        await rules.replace(T1_ADMIN, "rul_t1", {"tenantId": "t2"})  # moved to another tenant
    with pytest.raises(Forbidden):
        await rules.install_shipped(T1_ADMIN, "no-such-pack", "t2")  # refused before the 404
    assert book.saved == [] and book.deleted == []
    await rules.delete(T1_ADMIN, "rul_t1")
    assert book.deleted == ["rul_t1"]


async def test_an_unknown_shipped_pack_is_not_found() -> None:
    rules, book = service()
    with pytest.raises(NotFound, match="no rule pack"):
        await rules.install_shipped(OPERATOR, "no-such-pack", None)
    assert book.saved == []
