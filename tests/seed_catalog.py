"""Read the event names (and seed 002's payload lists) straight out of the
seed documents, independently of the catalog code, so tests can check the
shipped packs against the seeds.

The seeds are vendored under ``tests/data/seeds`` (copies of the
requirement documents, so a fresh clone tests itself). Seed 002 is a
flattened web page: entries run together on a line as
``EVENT_TYPE— Name: Description. (fields)EVENT_TYPE— ...`` under category
headings such as ``Tickets (packages/tickets)`` and sub-headings ending in
a colon.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SEEDS = REPO / "tests" / "data" / "seeds"

_ENTRY_START = re.compile(r"(?=\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*\s*—\s)")
_ENTRY = re.compile(r"([A-Z][A-Z0-9_]*)\s*—\s*([^:]+):\s*(.*)", re.S)

# Seed 002's top-level headings -> the catalog category (the seed's
# "user-facing module grouping"); sub-headings refine some of them.
TOP_CATEGORIES = {
    "Tickets": "Tickets",
    "Scheduling": "Scheduling",
    "Projects": "Projects",
    "Billing": "Billing",
    "CRM": "CRM",
    "Documents": "Documents",
    "Email + Notifications + Surveys": "Email",
    "Integrations": "Integrations",
    "Assets + Media": "Assets",
}
SUB_CATEGORIES = {
    "Notifications": "Notifications",
    "Surveys / CSAT": "Surveys",
    "Media lifecycle": "Media",
}
# The "already present" events carry no payload list; their categories.
PRESENT_CATEGORIES = {
    "COMPANY": "CRM",
    "TICKET": "Tickets",
    "PROJECT": "Projects",
    "INVOICE": "Billing",
    "INBOUND": "Email",
    "EMAIL": "Email",
}


@dataclass(frozen=True)
class SeedField:
    names: tuple[str, ...]  # more than one: "clientId/companyId"
    optional: bool
    enum: tuple[str, ...] = ()
    children: tuple[SeedField, ...] = ()  # [{...}] and {...}
    array: bool = False


@dataclass
class SeedEvent:
    type: str
    title: str = ""
    description: str = ""
    fields_text: str | None = None
    category: str = ""
    group: str = ""
    present: bool = False  # "Already present" (no payload list in the seed)
    fields: tuple[SeedField, ...] = field(default_factory=tuple)


def split_top(text: str) -> list[str]:
    """Split at commas outside (), [] and {}."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def parse_seed_fields(text: str) -> tuple[SeedField, ...]:
    out = []
    for item in split_top(text):
        m = re.fullmatch(r"([A-Za-z/]+)(\?)?(\(.*\)|\[\]|\[\{.*\}\]|\{.*\})?(\?)?", item)
        if m is None:
            raise ValueError(f"unreadable seed field {item!r}")
        names, opt1, shape, opt2 = m.groups()
        enum: tuple[str, ...] = ()
        children: tuple[SeedField, ...] = ()
        array = False
        if shape and shape.startswith("("):
            enum = tuple(shape[1:-1].split("|"))
        elif shape == "[]":
            array = True
        elif shape and shape.startswith("[{"):
            children, array = parse_seed_fields(shape[2:-2]), True
        elif shape and shape.startswith("{"):
            children = parse_seed_fields(shape[1:-1])
        out.append(SeedField(tuple(names.split("/")), bool(opt1 or opt2), enum, children, array))
    return tuple(out)


def _trailing_group(entry: str) -> tuple[str, str | None]:
    """Split ``Description. (a, b(c|d))`` into the text and the last
    balanced parenthesised group."""
    entry = entry.rstrip()
    if not entry.endswith(")"):
        return entry, None
    depth = 0
    for i in range(len(entry) - 1, -1, -1):
        if entry[i] == ")":
            depth += 1
        elif entry[i] == "(":
            depth -= 1
            if depth == 0:
                return entry[:i].rstrip(), entry[i + 1 : -1]
    raise ValueError(f"unbalanced parentheses in {entry[:60]!r}")


def _present_names(line: str) -> list[str]:
    # "COMPANY_CREATED,COMPANY_UPDATEDTICKET_CREATED,...": the page lost the
    # list breaks; every name ends in a past participle (...ED), so a name
    # starts where "ED" meets the next capital.
    names = []
    for chunk in line.split(","):
        names += re.split(r"(?<=ED)(?=[A-Z])", chunk.strip())
    return [n for n in names if n]


def seed_002() -> list[SeedEvent]:
    lines = (SEEDS / "002-workflow-event-catalog-v2.txt").read_text(encoding="utf-8").splitlines()
    events: list[SeedEvent] = []
    category = group = ""
    in_present = False
    for line in lines:
        text = line.strip()
        if not text:
            continue
        if text.startswith("Found in code/migrations"):
            in_present = True
            continue
        if in_present:
            for name in _present_names(text):
                prefix = name.split("_")[0]
                events.append(SeedEvent(name, category=PRESENT_CATEGORIES[prefix], present=True))
            in_present = False
            continue
        if "—" in text and _ENTRY_START.search(text) and not text.startswith("Each entry"):
            for chunk in _ENTRY_START.split(text):
                chunk = chunk.strip()
                if not chunk:
                    continue
                m = _ENTRY.fullmatch(chunk)
                if m is None:
                    raise ValueError(f"unreadable seed 002 entry {chunk[:80]!r}")
                name, title, rest = m.groups()
                description, fields_text = _trailing_group(rest)
                if fields_text is None:
                    raise ValueError(f"{name}: no payload list")
                events.append(
                    SeedEvent(
                        name,
                        title.strip(),
                        description.strip(),
                        fields_text,
                        SUB_CATEGORIES.get(group, category),
                        group,
                        fields=parse_seed_fields(fields_text),
                    )
                )
            continue
        heading = re.fullmatch(r"(.+?) \(packages/[^)]*\)", text)
        if heading:
            top = heading.group(1)
            top = "CRM" if top.startswith("CRM") else top
            category, group = TOP_CATEGORIES[top], ""
        elif text.endswith(":") and category:
            group = re.sub(r"\s*\(.*\)", "", text[:-1]).strip()
    return events


def seed_000() -> list[str]:
    """``qms.document.created|updated|published|acknowledged`` expanded."""
    text = (SEEDS / "000-qms-realtime-event-schema.md").read_text(encoding="utf-8")
    section = text.split("## Suggested event types", 1)[1].split("\n## ", 1)[0]
    names: list[str] = []
    for spec in re.findall(r"`([a-z_.|]+)`", section):
        first, *rest = spec.split("|")
        prefix = first.rsplit(".", 1)[0]
        names.append(first)
        names += [f"{prefix}.{tail}" for tail in rest]
    return names


def seed_001() -> dict[str, list[str]]:
    """Tenant lifecycle codes and the module events, by module."""
    text = (SEEDS / "001-event-system-infrastructure-review.md").read_text(encoding="utf-8")
    out: dict[str, list[str]] = {"tenant": sorted(set(re.findall(r"`(ON_TENANT_[A-Z_]+)`", text)))}
    block = text.split("// LMS Events", 1)[1].split("```", 1)[0]
    module = "lms"
    for line in ("// LMS Events" + block).splitlines():
        heading = re.match(r"\s*// (\w+) Events", line)
        if heading:
            module = heading.group(1).lower()
            continue
        out.setdefault(module, []).extend(re.findall(r"'([a-z]+\.[a-z_]+)'", line))
    return out


def seed_004() -> list[str]:
    text = (SEEDS / "004-tenant-landlord-portal-sync.md").read_text(encoding="utf-8")
    names = re.findall(r"`((?:ticket|invoice|notification)\.[a-z_]+)`", text)
    return sorted(set(names))
