"""Rule packs: named sets of rules shipped with Tidings (``packs/*.yaml``)
or kept by the host, installed with one command (``tidings rules
load-pack lms-awareness``) or one call (``POST /api/admin/rule-packs/
{name}``, or ``POST /api/admin/rule-packs`` with the pack itself).
Installing is idempotent: a rule with the same name and scope is
replaced, not duplicated; a pack with one bad rule installs nothing."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from tidings.errors import InvalidInput, NotFound
from tidings.store.base import RuleRecord

if TYPE_CHECKING:
    from tidings.automation.rulebook import RuleBook

PACKS = Path(__file__).parent / "packs"


def shipped_packs() -> dict[str, Path]:
    return {p.stem: p for p in sorted(PACKS.glob("*.yaml"))}


def read_pack(name_or_path: str) -> dict[str, Any]:
    """A shipped pack by name, or a YAML/JSON file by path."""
    path = shipped_packs().get(name_or_path) or Path(name_or_path)
    if not path.is_file():
        known = ", ".join(shipped_packs())
        raise NotFound(f"no rule pack {name_or_path!r} (shipped: {known})", field="pack")
    try:
        pack = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise InvalidInput(
            f"cannot read rule pack {path}: {exc}".splitlines()[0], field="pack"
        ) from None
    if not isinstance(pack, dict) or not isinstance(pack.get("rules"), list):
        raise InvalidInput(f"rule pack {path} needs a 'rules' list", field="pack")
    return pack


async def install_pack(
    rulebook: RuleBook, pack: dict[str, Any], tenant_id: str | None, author: str | None = None
) -> list[RuleRecord]:
    """Save every rule of ``pack`` scoped to ``tenant_id``, replacing the
    rules of the same name and scope. Every rule is checked before the
    first is saved: a bad one (its ``InvalidInput`` names ``/rules/<i>``)
    installs nothing."""
    bodies = [{**body, "tenantId": tenant_id} for body in _rules_of(pack)]
    for i, body in enumerate(bodies):
        with _at_rule(i):
            rulebook.check(body)
    existing = {(r.name, r.tenant_id): r.id for r in await rulebook.store.jobs.list_rules()}
    installed = []
    for i, body in enumerate(bodies):
        rule_id = existing.get((str(body.get("name")), tenant_id))
        with _at_rule(i):
            record, _ = await rulebook.save(
                body, rule_id=rule_id, author=author or f"pack:{pack.get('name', '?')}"
            )
        installed.append(record)
    return installed


def _rules_of(pack: dict[str, Any]) -> list[dict[str, Any]]:
    rules: list[Any] = pack["rules"]
    for i, body in enumerate(rules):
        if not isinstance(body, dict):
            raise InvalidInput("each rule is an object", field=f"/rules/{i}")
    return rules


@contextmanager
def _at_rule(index: int) -> Iterator[None]:
    """An ``InvalidInput`` raised inside names the rule's place in the pack."""
    try:
        yield
    except InvalidInput as exc:
        exc.field = f"/rules/{index}{exc.field or ''}"
        raise
