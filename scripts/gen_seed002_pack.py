"""One-off: generate ``src/tidings/catalog/packs/seed-002-workflow.yaml`` from
seed 002 (Workflow Event Catalog v2).

The YAML pack in the repository is the source of truth and is reviewed and
edited by hand; this script records how it was first derived (and can
regenerate it, overwriting hand edits, with ``--write``). It reads the
seed with ``tests/seed_catalog.py``, the same parser the tests use.

    python scripts/gen_seed002_pack.py            # print the pack
    python scripts/gen_seed002_pack.py --write    # overwrite the pack file
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from seed_catalog import SeedEvent, seed_002, split_top  # noqa: E402

TARGET = ROOT / "src" / "tidings" / "catalog" / "packs" / "seed-002-workflow.yaml"

MODULES = {
    "Tickets": "tickets",
    "Scheduling": "scheduling",
    "Projects": "projects",
    "Billing": "billing",
    "CRM": "crm",
    "Documents": "documents",
    "Email": "email",
    "Notifications": "notifications",
    "Surveys": "surveys",
    "Integrations": "integrations",
    "Assets": "assets",
    "Media": "media",
}
ENTITY_PREFIXES = [  # longest first
    ("TICKET_SLA_STAGE", "ticket"),
    ("TICKET_APPROVAL", "ticket"),
    ("TICKET", "ticket"),
    ("APPOINTMENT", "appointment"),
    ("SCHEDULE_BLOCK", "schedule_block"),
    ("CAPACITY_THRESHOLD", "team"),
    ("TECHNICIAN", "appointment"),
    ("PROJECT_TASK", "project_task"),
    ("PROJECT_APPROVAL", "project_approval"),
    ("PROJECT", "project"),
    ("INVOICE", "invoice"),
    ("PAYMENT", "payment"),
    ("CREDIT_NOTE", "credit_note"),
    ("CONTRACT", "contract"),
    ("RECURRING_BILLING_RUN", "billing_run"),
    ("COMPANY", "company"),
    ("CLIENT", "client"),
    ("CONTACT", "contact"),
    ("INTERACTION", "interaction"),
    ("NOTE", "note"),
    ("TAG", "tag"),
    ("DOCUMENT", "document"),
    ("INBOUND_EMAIL", "email"),
    ("OUTBOUND_EMAIL", "email"),
    ("EMAIL_PROVIDER", "email_provider"),
    ("EMAIL", "email"),
    ("NOTIFICATION", "notification"),
    ("SURVEY", "survey"),
    ("CSAT_ALERT", "csat_alert"),
    ("INTEGRATION", "integration"),
    ("EXTERNAL_MAPPING", "external_mapping"),
    ("ASSET", "asset"),
    ("FILE", "file"),
    ("MEDIA_PROCESSING", "file"),
]
# Where the seed's naming habits give the wrong type (see tidings.core.fields).
ANNOTATE = {
    "capacityLimit": "capacityLimit:number",
    "currentBooked": "currentBooked:number",
    "invoicesCreated": "invoicesCreated:number",
    "reminderNumber": "reminderNumber:integer",
    "summary{created,updated,deleted,skipped}": (
        "summary{created:number, updated:number, deleted:number, skipped:number}"
    ),
    "outputs?": "outputs[]?:object",
    "warnings?": "warnings[]?",
    "previousValue?": "previousValue?:any",
    "newValue?": "newValue?:any",
    "eta?": "eta?:datetime",
}
PERSONAL = {  # extra default audiences for events about one person
    "TECHNICIAN_DISPATCHED": ["user:{data.technicianUserId}"],
    "TECHNICIAN_EN_ROUTE": ["user:{data.technicianUserId}"],
    "TECHNICIAN_ARRIVED": ["user:{data.technicianUserId}"],
    "TECHNICIAN_CHECKED_OUT": ["user:{data.technicianUserId}"],
    "CLIENT_OWNER_ASSIGNED": ["user:{data.newOwnerUserId}"],
}
SENSITIVE = {
    "CONTACT_CREATED": {
        "data.fullName": "crm.pii.read",
        "data.email": "crm.pii.read",
        "data.phoneNumber": "crm.pii.read",
    },
    "INBOUND_EMAIL_RECEIVED": {"data.from": "email.pii.read", "data.to": "email.pii.read"},
    "INBOUND_EMAIL_REPLY_RECEIVED": {"data.from": "email.pii.read", "data.to": "email.pii.read"},
    "OUTBOUND_EMAIL_QUEUED": {
        "data.from": "email.pii.read",
        "data.to": "email.pii.read",
        "data.cc": "email.pii.read",
    },
    "EMAIL_DELIVERED": {"data.to": "email.pii.read"},
    "EMAIL_BOUNCED": {"data.to": "email.pii.read"},
    "EMAIL_COMPLAINT_RECEIVED": {"data.to": "email.pii.read"},
    "EMAIL_UNSUBSCRIBED": {"data.recipientEmail": "email.pii.read"},
    "DOCUMENT_SIGNATURE_REQUESTED": {"data.signers": "documents.pii.read"},
    "DOCUMENT_SIGNED": {"data.signerEmail": "documents.pii.read"},
}
# Seed 002 lists these as "already present" without payloads: designed here
# in the seed's conventions.
PRESENT = {
    "COMPANY_CREATED": (
        "Company Created",
        "Company (client organisation) record created.",
        "tenantId, companyId, companyName, createdByUserId, createdAt, status?",
    ),
    "COMPANY_UPDATED": (
        "Company Updated",
        "Company fields changed.",
        "tenantId, companyId, updatedByUserId, updatedAt, updatedFields?, changes?",
    ),
    "TICKET_CREATED": (
        "Ticket Created",
        "Ticket opened (portal, email, UI or API).",
        "tenantId, ticketId, title, statusId?, priorityId?, boardId?, clientId?, contactId?, "
        "createdByUserId?, channel(email|portal|ui|api)?, createdAt",
    ),
    "TICKET_UPDATED": (
        "Ticket Updated",
        "Ticket fields changed.",
        "tenantId, ticketId, actorUserId, updatedAt, updatedFields?, changes?",
    ),
    "TICKET_CLOSED": (
        "Ticket Closed",
        "Ticket closed.",
        "tenantId, ticketId, previousStatusId?, actorUserId?, closedAt, reason?",
    ),
    "TICKET_RESPONSE_STATE_CHANGED": (
        "Ticket Response State Changed",
        "Whose turn it is to respond changed (awaiting client / awaiting internal).",
        "tenantId, ticketId, previousResponseState?, newResponseState?, actorUserId?, changedAt",
    ),
    "PROJECT_CREATED": (
        "Project Created",
        "Project created.",
        "tenantId, projectId, projectName, clientId?, createdByUserId, createdAt, status?",
    ),
    "INVOICE_GENERATED": (
        "Invoice Generated",
        "Invoice generated (draft) from billable work or a billing run.",
        "tenantId, invoiceId, clientId/companyId, invoiceNumber?, totalAmount, currency, "
        "generatedByUserId?, generatedAt",
    ),
    "INVOICE_FINALIZED": (
        "Invoice Finalized",
        "Invoice finalized and ready to send.",
        "tenantId, invoiceId, clientId/companyId, invoiceNumber?, totalAmount, currency, "
        "finalizedByUserId?, finalizedAt",
    ),
    "INBOUND_EMAIL_RECEIVED": (
        "Inbound Email Received",
        "Inbound email received by a connected mailbox.",
        "tenantId, messageId, threadId?, ticketId?, from, to[], subject, receivedAt, provider",
    ),
    "EMAIL_PROVIDER_CONNECTED": (
        "Email Provider Connected",
        "Mailbox provider connected.",
        "tenantId, providerId, provider, mailbox, connectedByUserId?, connectedAt",
    ),
    "EMAIL_PROVIDER_DISCONNECTED": (
        "Email Provider Disconnected",
        "Mailbox provider disconnected.",
        "tenantId, providerId, provider, mailbox, disconnectedByUserId?, disconnectedAt, reason?",
    ),
}


def action_of(name: str) -> str:
    if name.endswith(("_STATUS_CHANGED", "_STATE_CHANGED")):
        return "STATUS_CHANGED"
    for suffix in ("_CHANGED", "_CREATED", "_UPDATED", "_DELETED", "_ASSIGNED"):
        if name.endswith(suffix):
            return "UPDATED" if suffix == "_CHANGED" else suffix[1:]
    for tail in ("NO_SHOW", "EN_ROUTE", "CHECKED_OUT"):
        if name.endswith(tail):
            return tail
    return name.rsplit("_", 1)[-1]


def entity_of(name: str) -> str:
    for prefix, entity in ENTITY_PREFIXES:
        if name == prefix or name.startswith(prefix + "_"):
            return entity
    raise ValueError(f"no entity type for {name}")


def annotate(fields_text: str) -> str:
    return ", ".join(ANNOTATE.get(item, item) for item in split_top(fields_text))


def entry(event: SeedEvent) -> dict[str, Any]:
    if event.present:
        title, description, fields_text = PRESENT[event.type]
    else:
        title, description = event.title, event.description
        fields_text = annotate(event.fields_text or "")
    module = MODULES[event.category]
    out: dict[str, Any] = {"title": title, "module": module, "category": event.category}
    if event.group:
        out["group"] = event.group
    out["entityType"] = entity_of(event.type)
    out["action"] = action_of(event.type)
    out["description"] = {"en": description}
    out["audiences"] = [f"permission:{module}.read", *PERSONAL.get(event.type, [])]
    if event.type in SENSITIVE:
        out["sensitive"] = dict(SENSITIVE[event.type])
    if event.type == "TICKET_TAGS_CHANGED":
        out["transition"] = False  # added/removed tags, not a previous/new value
    out["versions"] = [{"fields": fields_text}]
    return out


class _PlainDumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


HEADER = """\
# Seed 002 (Workflow Event Catalog v2): every event it lists, "already
# present" and proposed, by category. Payloads use the seed's notation
# (`?` = optional; see tidings.core.fields for types); the "already present"
# events had no payload list in the seed and were designed in its
# conventions. First generated by scripts/gen_seed002_pack.py; this file is
# the source of truth.
"""


def render() -> str:
    events = seed_002()
    ordered = [e for e in events if e.present] + [e for e in events if not e.present]
    pack = {
        "pack": "seed-002-workflow",
        "naming": "screaming_snake",
        "conventions": ["tenant-id", "transitions", "updates"],
        "source": "seeds/002-workflow-event-catalog-v2.txt",
        "description": "Business events of a PSA: tickets, scheduling, projects, billing, CRM, "
        "documents, email, notifications, surveys, integrations, assets and media.",
        "types": {e.type: entry(e) for e in ordered},
    }
    body = yaml.dump(pack, Dumper=_PlainDumper, sort_keys=False, allow_unicode=True, width=4096)
    return HEADER + body


def main() -> None:
    text = render()
    if "--write" in sys.argv:
        TARGET.write_text(text, encoding="utf-8")
        print(f"wrote {TARGET}")
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
