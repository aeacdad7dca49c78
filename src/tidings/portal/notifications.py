"""The portal's in-app notifications: hub automation rules, installed at
startup through the hub's admin API (``/api/admin/rules``).

Why rules rather than calling the notifications API in each use case: a
rule runs from the hub's log as a durable job after the event is
committed, so the notification follows the event exactly (retried until it
is written, never sent for a transaction that rolled back), and each use
case stays one transaction of the portal's database. The hub creates the
notification and pushes ``notification.created`` with the new unread count
to ``user:<id>``, which moves the badge (``/api/notifications/unread-count``).

The rules are global (every organisation) and named ``portal: ...``; each
start puts them back as written here (created when missing, replaced when
changed), so editing this list is how they change.
"""

from __future__ import annotations

from typing import Any

import httpx

RULE_PREFIX = "portal: "
RULES: list[dict[str, Any]] = [
    {
        "name": RULE_PREFIX + "the landlord hears of a new ticket",
        "trigger": {"type": "ticket.created"},
        "action": {
            "type": "send_notification",
            "config": {
                "audience": "role:LANDLORD",
                "type": "ticket_created",
                "title": "New ticket: {{ data.title }}",
                "body": "A renter reported a problem ({{ data.priority }} priority).",
                "link": "/tickets/{{ data.ticketId }}",
            },
        },
    },
    {
        "name": RULE_PREFIX + "the renter hears the quote was approved",
        "trigger": {"type": "ticket.approved"},
        "action": {
            "type": "send_notification",
            "config": {
                "audience": "user:{{ data.renterId }}",
                "type": "quote_approved",
                "title": "The quote for your ticket was approved",
                "body": "Work can start now.",
                "link": "/tickets/{{ data.ticketId }}",
            },
        },
    },
    {
        "name": RULE_PREFIX + "the renter hears of a new invoice",
        "trigger": {"type": "invoice.created"},
        "action": {
            "type": "send_notification",
            "config": {
                "audience": "user:{{ data.renterId }}",
                "type": "invoice_created",
                "title": "New invoice {{ data.number }}",
                "body": (
                    "{{ '%.2f' | format(data.amount) }} {{ data.currency }},"
                    " due {{ data.dueDate }}."
                ),
                "link": "/invoices",
            },
        },
    },
]


def _same(stored: dict[str, Any], wanted: dict[str, Any]) -> bool:
    return all(stored.get(k) == v for k, v in wanted.items() if k != "trigger") and (
        stored.get("trigger", {}).get("type") == wanted["trigger"]["type"]
    )


async def install_rules(hub: httpx.AsyncClient) -> None:
    """Create or update the portal's rules (``hub``: an admin client)."""
    listed = await hub.get("/api/admin/rules")
    listed.raise_for_status()
    existing = {r["name"]: r for r in listed.json()["items"] if r.get("tenantId") is None}
    for rule in RULES:
        body = {**rule, "tenantId": None, "enabled": True, "author": "tidings.portal"}
        stored = existing.get(rule["name"])
        if stored is None:
            answer = await hub.post("/api/admin/rules", json=body)
        elif not _same(stored, {**rule, "enabled": True}):
            answer = await hub.put(f"/api/admin/rules/{stored['id']}", json=body)
        else:
            continue
        answer.raise_for_status()
