"""``--seed``: the demo's history is there (tickets in several states with
their timelines, an invoice, the notifications the rules made), and
seeding again (a restart on the same databases) adds nothing."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from portal_server import PortalServer, running_portal

LANDLORD, RENTER, LANDLORD2 = "landlord@example.com", "tenant@example.com", "landlord2@example.com"


def state(portal: PortalServer) -> dict[str, Any]:
    tickets = portal.api(LANDLORD, "GET", "/api/tickets").json()
    return {
        "tickets": sorted((t["title"], t["status"]) for t in tickets),
        "org2": sorted(t["title"] for t in portal.api(LANDLORD2, "GET", "/api/tickets").json()),
        "invoices": [
            i["number"] for i in portal.api(LANDLORD, "GET", "/api/finance/invoices").json()
        ],
        "tenancies": [t["id"] for t in portal.api(RENTER, "GET", "/api/tenancies").json()],
    }


def notifications(portal: PortalServer, who: str, at_least: int, timeout: float = 20) -> list[str]:
    """The titles of ``who``'s notifications, once there are ``at_least``
    (or when ``timeout`` is over)."""
    deadline = time.monotonic() + timeout
    while True:
        items = portal.api(who, "GET", "/api/notifications").json()["items"]
        if len(items) >= at_least or time.monotonic() > deadline:
            return [n["title"] for n in items]
        time.sleep(0.2)


def test_the_seed_makes_history_once(tmp_path: Path) -> None:
    hub, own = f"sqlite:///{tmp_path / 'hub.db'}", f"sqlite:///{tmp_path / 'portal.db'}"
    with running_portal(tmp_path, hub, own) as portal:
        first = state(portal)
        assert first["tickets"] == [
            ("Leaking kitchen tap", "COMPLETED"),
            ("Mould in the bathroom", "OPEN"),
            ("Radiator valve stuck", "QUOTED"),
        ]
        assert first["org2"] == ["Front door lock sticks"]
        assert len(first["invoices"]) == 1 and first["tenancies"] == ["ten-1"]
        done = next(
            t
            for t in portal.api(LANDLORD, "GET", "/api/tickets").json()
            if t["status"] == "COMPLETED"
        )
        timeline = portal.api(RENTER, "GET", f"/api/tickets/{done['id']}/timeline").json()
        assert [r["eventType"] for r in timeline] == [
            "created",
            "status_changed",
            "quote_submitted",
            "approved",
            "status_changed",
            "completed",
        ]
        landlord_heard = notifications(portal, LANDLORD, 3)
        assert sum(t.startswith("New ticket: ") for t in landlord_heard) == 3
        renter_heard = notifications(portal, RENTER, 2)
        assert "The quote for your ticket was approved" in renter_heard
        assert any(t.startswith("New invoice INV-") for t in renter_heard)
    with running_portal(tmp_path, hub, own) as again:
        assert state(again) == first
        more = len(landlord_heard) + 1
        assert len(notifications(again, LANDLORD, more, timeout=3)) == len(landlord_heard)
