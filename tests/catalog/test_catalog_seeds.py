"""The shipped packs against the seeds: every event the seeds name is in the
catalog, and seed 002's payload lists match the schemas field by field.
Also: broken packs fail loudly with file and line."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from seed_catalog import SEEDS, SeedField, seed_000, seed_001, seed_002, seed_004
from tidings.catalog import PACKS_DIR, load_catalog, load_packs
from tidings.core.catalog import CatalogError

CATALOG = load_catalog()
SEED_002 = seed_002()
COUNTS = re.compile(
    r"(Count|Amount|Seconds|Ms|Bytes)$|^(amount|days)[A-Z]|^(amount|minutes|score|baseline|delta|threshold)$"
)
ANNOTATED_NUMBERS = {"capacityLimit", "currentBooked", "invoicesCreated", "reminderNumber"}


def test_the_seeds_are_vendored_in_the_repository() -> None:
    assert Path(__file__).resolve().parents[1] / "data" / "seeds" == SEEDS
    assert (SEEDS / "002-workflow-event-catalog-v2.txt").is_file()


def test_seed_002_lists_about_130_events_and_each_is_in_the_catalog() -> None:
    assert len(SEED_002) >= 130
    assert len({e.type for e in SEED_002}) == len(SEED_002)
    assert sum(e.present for e in SEED_002) == 12
    missing = [e.type for e in SEED_002 if e.type not in CATALOG]
    assert missing == []


def _groups(schema: dict[str, Any]) -> list[list[str]]:
    parts = [schema, *schema.get("allOf", [])]
    return [sorted(o["required"][0] for o in p["anyOf"]) for p in parts if "anyOf" in p]


def _kind(schema: dict[str, Any]) -> str:
    return str(schema.get("format") or schema.get("type"))


def assert_fields_match(schema: dict[str, Any], fields: tuple[SeedField, ...], where: str) -> None:
    props: dict[str, Any] = schema["properties"]
    required = set(schema.get("required", []))
    listed = [n for f in fields for n in f.names]
    assert sorted(props) == sorted(listed), f"{where}: fields differ"
    for item in fields:
        at = f"{where}.{'/'.join(item.names)}"
        if len(item.names) == 1:
            assert (item.names[0] in required) is (not item.optional), f"{at}: optionality"
        else:
            assert not set(item.names) & required, at
            assert (sorted(item.names) in _groups(schema)) is (not item.optional), f"{at}: one of"
        sub = props[item.names[0]]
        if item.enum:
            assert sub == {"type": "string", "enum": list(item.enum)}, at
        if item.children:
            assert_fields_match(sub["items"] if item.array else sub, item.children, at)
        elif item.array:
            assert sub["type"] == "array", at
        for name in item.names:
            sub = props[name]
            if item.enum or item.array or item.children:
                continue
            if name.endswith("At") and name != "At":
                assert _kind(sub) == "date-time", f"{at}: *At is a date-time"
            elif name.endswith("Id"):
                assert sub == {"type": "string", "minLength": 1}, f"{at}: ids are non-empty"
            elif name.endswith("Ids"):
                assert sub["items"] == {"type": "string", "minLength": 1}, at
            elif COUNTS.search(name) or name in ANNOTATED_NUMBERS:
                assert sub["type"] in ("number", "integer"), f"{at}: counts are numbers"


@pytest.mark.parametrize("event", [e for e in SEED_002 if not e.present], ids=lambda e: e.type)
def test_seed_002_payloads_match_the_schema(event: Any) -> None:
    event_type = CATALOG.get(event.type)
    schema = dict(event_type.versions[1])
    assert_fields_match(schema, event.fields, event.type)
    assert "tenantId" in schema["required"]
    assert event_type.ref(1) == f"payload.{''.join(w.title() for w in event.type.split('_'))}.v1"
    assert event_type.title == event.title
    assert event_type.description["en"] == event.description
    assert event_type.category == event.category
    assert event_type.group == event.group
    assert event_type.audiences, "every seed 002 type has default audiences"
    assert event_type.action and event_type.entity_type


@pytest.mark.parametrize("event", [e for e in SEED_002 if e.present], ids=lambda e: e.type)
def test_seed_002_already_present_events(event: Any) -> None:
    event_type = CATALOG.get(event.type)
    assert event_type.category == event.category
    assert "tenantId" in event_type.versions[1]["required"]
    assert event_type.description["en"] and event_type.audiences


def test_seed_002_summary_counts_are_numbers() -> None:
    summary = CATALOG.get("INTEGRATION_SYNC_COMPLETED").versions[1]["properties"]["summary"]
    assert {k: v["type"] for k, v in summary["properties"].items()} == {
        "created": "number",
        "updated": "number",
        "deleted": "number",
        "skipped": "number",
    }


def test_seed_000_types() -> None:
    names = seed_000()
    assert len(names) == 33
    assert [n for n in names if n not in CATALOG] == []
    for name in names:
        event_type = CATALOG.get(name)
        expected = {"qms": "permission:qms.read"}.get(name.split(".")[0])
        if expected:
            assert expected in event_type.audiences, name
    assert "user:{data.userId}" in CATALOG.get("training.assignment.created").audiences
    assert CATALOG.get("accounts.user.created").sensitive["data.email"] == "accounts.pii.read"


def test_seed_001_types_with_arabic_and_english() -> None:
    found = seed_001()
    assert len(found["tenant"]) == 5
    assert set(found) >= {"tenant", "lms", "awareness", "phishing", "policies"}
    for module, names in found.items():
        for name in names:
            event_type = CATALOG.get(name)
            assert event_type.description.get("en"), name
            assert re.search(r"[\u0600-\u06FF]", event_type.description.get("ar", "")), name
            if module != "tenant":
                assert event_type.module == module, name
    committees = CATALOG.search(module="committees")
    assert committees and all("ar" in t.description for t in committees)
    suspended = CATALOG.get("ON_TENANT_SUSPENDED").versions[1]
    assert {"previousState", "newState", "tenantId"} <= set(suspended["required"])


def test_seed_004_types() -> None:
    names = [*seed_004(), "notification.created"]
    assert {"ticket.created", "ticket.status_changed", "ticket.quote_submitted"} <= set(names)
    assert {"ticket.approved", "ticket.completed", "invoice.created", "invoice.paid"} <= set(names)
    assert [n for n in names if n not in CATALOG] == []
    assert CATALOG.get("notification.created").audiences == ("user:{data.userId}",)
    status = CATALOG.get("ticket.status_changed").versions[1]["properties"]["newStatus"]
    assert "CANCELLED" in status["enum"] and "AUDITED" in status["enum"]


def test_every_type_has_the_entry_the_issue_lists() -> None:
    for event_type in CATALOG:
        assert event_type.versions and event_type.latest >= 1, event_type.name
        assert event_type.module and event_type.category, event_type.name
        assert event_type.description.get("en"), event_type.name
        assert event_type.audiences, event_type.name
        assert event_type.action, event_type.name
        assert event_type.active, event_type.name


# -- the shipped packs and broken packs -------------------------------------


def test_shipped_packs_are_plain_checked_data() -> None:
    packs = load_packs()
    assert {p.path.name for p in packs} >= {
        "seed-000-qms.yaml",
        "seed-001-tenant-lifecycle.yaml",
        "seed-001-modules.yaml",
        "seed-002-workflow.yaml",
        "seed-004-portal.yaml",
    }
    for path in PACKS_DIR.glob("*.yaml"):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"(^|\s)[&*][A-Za-z]", text), f"{path.name}: anchors/aliases"


GOOD_TYPE = """\
  acme.widget.created:
    module: acme
    category: Acme
    description: {en: Widget created}
    audiences: ["permission:acme.read"]
    versions:
    - fields: "widgetId, createdAt"
"""


def _write(tmp_path: Path, name: str, body: str, *, header: str = "naming: dotted\n") -> Path:
    path = tmp_path / name
    path.write_text(f"pack: {path.stem}\n{header}types:\n{body}", encoding="utf-8")
    return path


def _load_error(*paths: Path) -> str:
    with pytest.raises(CatalogError) as info:
        load_catalog(paths, shipped=False)
    return str(info.value)


def test_a_good_extra_pack_loads(tmp_path: Path) -> None:
    path = _write(tmp_path, "acme.yaml", GOOD_TYPE)
    catalog = load_catalog([path])
    assert "acme.widget.created" in catalog and "TICKET_CREATED" in catalog


UPDATES = "naming: dotted\nconventions: [updates]\n"


@pytest.mark.parametrize(
    ("body", "header", "line", "words"),
    [
        (GOOD_TYPE.replace("widgetId, createdAt", "widgetId, created At"), None, 10, "column 19"),
        (GOOD_TYPE.replace("permission:acme.read", "everyone"), None, 8, "audience"),
        (GOOD_TYPE.replace("acme.widget.created", "ACME_WIDGET"), None, 4, "naming is dotted"),
        (GOOD_TYPE.replace("    module: acme\n", "    modul: acme\n"), None, 5, "key 'modul'"),
        (GOOD_TYPE.replace("- fields", "- field"), None, 10, "unknown key 'field'"),
        (
            GOOD_TYPE + "  acme.widget.updated:\n    versions: [{fields: x}]\n",
            UPDATES,
            13,
            "changes",
        ),
        (GOOD_TYPE.replace('["permission:acme.read"]', '["a": b]'), None, 8, "expected"),
    ],
)
def test_a_broken_pack_names_file_and_line(
    tmp_path: Path, body: str, header: str | None, line: int, words: str
) -> None:
    path = _write(tmp_path, "broken.yaml", body, header=header or "naming: dotted\n")
    message = _load_error(path)
    assert message.startswith(f"{path}:{line}:"), message
    assert words in message


def test_yaml_syntax_errors_and_anchors_name_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "syntax.yaml", GOOD_TYPE + "  bad: [unclosed\n")
    assert _load_error(path).startswith(f"{path}:")
    anchored = GOOD_TYPE.replace(
        'audiences: ["permission:acme.read"]', 'audiences: &aud ["permission:acme.read"]'
    )
    path = _write(tmp_path, "anchors.yaml", anchored + "  acme.widget.done:\n    audiences: *aud\n")
    message = _load_error(path)
    assert message.startswith(f"{path}:8:") and "anchors" in message


def test_duplicate_types_across_packs_name_both_files(tmp_path: Path) -> None:
    first = _write(tmp_path, "a.yaml", GOOD_TYPE)
    second = _write(tmp_path, "b.yaml", GOOD_TYPE)
    message = _load_error(first, second)
    assert message.startswith(f"{second}:4:") and f"{first}:4" in message
    shadow = _write(tmp_path, "c.yaml", GOOD_TYPE.replace("acme.widget.created", "qms.car.updated"))
    with pytest.raises(CatalogError) as info:
        load_catalog([shadow])
    message = str(info.value)
    assert "seed-000-qms.yaml" in message and str(shadow) in message
