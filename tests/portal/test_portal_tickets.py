"""Tickets over a real portal server, on SQLite and on PostgreSQL: create
(seed 004's shape, defaults, bad input naming the field), who lists and
reads what (404 outside the caller's organisation), the state machine with
guards per role (403) and refusals naming the allowed states (409), quote,
approve with ``Idempotency-Key``, the timeline in order."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from portal_server import PortalServer

RENTER, LANDLORD, CONTRACTOR, OPS = (
    "tenant@example.com",
    "landlord@example.com",
    "contractor@example.com",
    "ops@example.com",
)
RENTER2, LANDLORD2 = "tenant2@example.com", "landlord2@example.com"
SHAPE = {
    "id",
    "landlordId",
    "propertyId",
    "title",
    "category",
    "description",
    "priority",
    "status",
    "createdAt",
}


def new_ticket(portal: PortalServer, renter: str = RENTER, **body: Any) -> dict[str, Any]:
    answer = portal.api(renter, "POST", "/api/tickets", json={"title": "Leaking tap", **body})
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def move(portal: PortalServer, who: str, ticket_id: str, to: str) -> Any:
    return portal.api(who, "PATCH", f"/api/tickets/{ticket_id}/status", json={"to": to})


def quoted_ticket(portal: PortalServer) -> dict[str, Any]:
    ticket = new_ticket(portal)
    assert move(portal, LANDLORD, ticket["id"], "TRIAGED").status_code == 200
    quote = portal.api(
        CONTRACTOR,
        "POST",
        f"/api/tickets/{ticket['id']}/quote",
        json={"amount": 150.0, "notes": "Replace washer"},
    )
    assert quote.status_code == 200, quote.text
    return dict(quote.json())


def test_a_renter_creates_a_ticket_with_seed_004s_shape(any_portal: PortalServer) -> None:
    ticket = new_ticket(
        any_portal,
        title="Leaking faucet in kitchen",
        category="plumbing",
        description="Leaking for 2 days",
        priority="HIGH",
    )
    assert set(ticket) >= SHAPE
    assert ticket["status"] == "OPEN" and ticket["landlordId"] == "org-1"
    assert ticket["propertyId"] == "prop-1"  # the renter's property by default
    assert (ticket["title"], ticket["category"], ticket["priority"]) == (
        "Leaking faucet in kitchen",
        "plumbing",
        "HIGH",
    )
    assert ticket["createdAt"].endswith("Z")
    again = any_portal.api(RENTER, "GET", f"/api/tickets/{ticket['id']}")
    assert again.status_code == 200 and again.json() == ticket


def test_only_a_title_is_needed(any_portal: PortalServer) -> None:
    ticket = new_ticket(any_portal, title="Broken window")
    assert ticket["category"] and ticket["priority"] == "MEDIUM" and ticket["description"] == ""


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "/title"),
        ({"title": ""}, "/title"),
        ({"title": "x", "priority": "WHENEVER"}, "/priority"),
        ({"title": "x", "propertyId": "prop-2"}, "/propertyId"),  # org-2's, not rented by them
        ({"title": "x", "colour": "red"}, "/colour"),
    ],
)
def test_bad_tickets_name_the_field_and_change_nothing(
    any_portal: PortalServer, body: dict[str, Any], field: str
) -> None:
    before = any_portal.api(RENTER, "GET", "/api/tickets").json()
    answer = any_portal.api(RENTER, "POST", "/api/tickets", json=body)
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["field"] == field
    assert any_portal.api(RENTER, "GET", "/api/tickets").json() == before


@pytest.mark.parametrize("who", [LANDLORD, CONTRACTOR, OPS])
def test_only_renters_create_tickets(any_portal: PortalServer, who: str) -> None:
    answer = any_portal.api(who, "POST", "/api/tickets", json={"title": "x"})
    assert answer.status_code == 403


def test_tickets_need_a_login(any_portal: PortalServer) -> None:
    with any_portal.client() as http:
        assert http.get("/api/tickets").status_code == 401
        assert http.post("/api/tickets", json={"title": "x"}).status_code == 401


def test_who_sees_which_tickets(any_portal: PortalServer) -> None:
    mine = new_ticket(any_portal)["id"]
    theirs = new_ticket(any_portal, renter=RENTER2)["id"]

    def ids(who: str) -> set[str]:
        answer = any_portal.api(who, "GET", "/api/tickets")
        assert answer.status_code == 200
        return {t["id"] for t in answer.json()}

    assert mine in ids(RENTER) and theirs not in ids(RENTER)
    assert mine in ids(LANDLORD) and theirs not in ids(LANDLORD)
    assert mine in ids(CONTRACTOR) and theirs not in ids(CONTRACTOR)
    assert theirs in ids(LANDLORD2) and mine not in ids(LANDLORD2)
    assert mine not in ids(RENTER2)
    assert {mine, theirs} <= ids(OPS)
    for outsider in (LANDLORD2, RENTER2):
        for path in (f"/api/tickets/{mine}", f"/api/tickets/{mine}/timeline"):
            assert any_portal.api(outsider, "GET", path).status_code == 404
        assert move(any_portal, outsider, mine, "CANCELLED").status_code in {403, 404}
    assert move(any_portal, LANDLORD2, mine, "TRIAGED").status_code == 404
    assert any_portal.api(LANDLORD, "GET", "/api/tickets/tkt_missing").status_code == 404


def test_the_full_lifecycle_and_its_timeline(any_portal: PortalServer) -> None:
    ticket = quoted_ticket(any_portal)
    tid = ticket["id"]
    assert ticket["status"] == "QUOTED" and ticket["quote"] == {
        "amount": 150.0,
        "notes": "Replace washer",
    }
    assert ticket["contractorId"] == "usr-contractor"
    approved = any_portal.api(LANDLORD, "POST", f"/api/tickets/{tid}/approve", json={})
    assert approved.status_code == 200 and approved.json()["status"] == "APPROVED"
    assert move(any_portal, CONTRACTOR, tid, "IN_PROGRESS").json()["status"] == "IN_PROGRESS"
    assert move(any_portal, CONTRACTOR, tid, "COMPLETED").json()["status"] == "COMPLETED"
    assert move(any_portal, LANDLORD, tid, "AUDITED").json()["status"] == "AUDITED"
    rows = any_portal.api(RENTER, "GET", f"/api/tickets/{tid}/timeline").json()
    assert [r["eventType"] for r in rows] == [
        "created",
        "status_changed",
        "quote_submitted",
        "approved",
        "status_changed",
        "completed",
        "status_changed",
    ]
    assert all(r["ticketId"] == tid and r["id"] and r["createdAt"] for r in rows)
    assert [r["actorId"] for r in rows] == [
        "usr-tenant",
        "usr-landlord",
        "usr-contractor",
        "usr-landlord",
        "usr-contractor",
        "usr-contractor",
        "usr-landlord",
    ]
    assert json.loads(rows[1]["details"]) == {"from": "OPEN", "to": "TRIAGED"}
    assert json.loads(rows[2]["details"])["amount"] == 150.0
    # AUDITED is terminal: nothing moves it, and the 409 says so
    refused = move(any_portal, LANDLORD, tid, "CANCELLED")
    assert refused.status_code == 409 and refused.json()["allowed"] == []


def test_a_refused_move_names_the_allowed_states(any_portal: PortalServer) -> None:
    tid = new_ticket(any_portal)["id"]
    answer = move(any_portal, LANDLORD, tid, "COMPLETED")
    assert answer.status_code == 409
    assert answer.json()["allowed"] == ["CANCELLED", "TRIAGED"]
    assert answer.json()["field"] == "/to"
    assert any_portal.api(LANDLORD, "GET", f"/api/tickets/{tid}").json()["status"] == "OPEN"
    assert len(any_portal.api(LANDLORD, "GET", f"/api/tickets/{tid}/timeline").json()) == 1


def test_an_unknown_state_names_the_field(any_portal: PortalServer) -> None:
    tid = new_ticket(any_portal)["id"]
    answer = move(any_portal, LANDLORD, tid, "FIXED")
    assert answer.status_code == 422 and answer.json()["field"] == "/to"


@pytest.mark.parametrize(
    ("who", "to"),
    [
        (RENTER, "TRIAGED"),
        (CONTRACTOR, "TRIAGED"),
        (OPS, "TRIAGED"),
        (LANDLORD, "QUOTED"),  # quoting is the contractor's endpoint
        (LANDLORD, "APPROVED"),  # approving has its own endpoint
        (CONTRACTOR, "CANCELLED"),
    ],
)
def test_a_role_not_allowed_is_403(any_portal: PortalServer, who: str, to: str) -> None:
    tid = new_ticket(any_portal)["id"]
    assert move(any_portal, who, tid, to).status_code == 403
    assert any_portal.api(LANDLORD, "GET", f"/api/tickets/{tid}").json()["status"] == "OPEN"


def test_a_renter_cancels_its_own_open_ticket_only(any_portal: PortalServer) -> None:
    open_one = new_ticket(any_portal)["id"]
    assert move(any_portal, RENTER, open_one, "CANCELLED").json()["status"] == "CANCELLED"
    triaged = new_ticket(any_portal)["id"]
    move(any_portal, LANDLORD, triaged, "TRIAGED")
    assert move(any_portal, RENTER, triaged, "CANCELLED").status_code == 403
    assert move(any_portal, LANDLORD, triaged, "CANCELLED").json()["status"] == "CANCELLED"


def test_quotes(any_portal: PortalServer) -> None:
    tid = new_ticket(any_portal)["id"]
    path = f"/api/tickets/{tid}/quote"
    body = {"amount": 99.5, "notes": "x"}
    assert any_portal.api(CONTRACTOR, "POST", path, json=body).status_code == 409  # OPEN
    move(any_portal, LANDLORD, tid, "TRIAGED")
    assert any_portal.api(LANDLORD, "POST", path, json=body).status_code == 403
    for bad, field in (
        ({"amount": -1}, "/amount"),
        ({"amount": 1.234}, "/amount"),
        ({}, "/amount"),
    ):
        answer = any_portal.api(CONTRACTOR, "POST", path, json=bad)
        assert answer.status_code == 422 and answer.json()["field"] == field, answer.text
    assert any_portal.api(LANDLORD, "GET", f"/api/tickets/{tid}").json()["status"] == "TRIAGED"
    done = any_portal.api(CONTRACTOR, "POST", path, json=body)
    assert done.status_code == 200 and done.json()["quote"]["amount"] == 99.5


def test_approve_with_the_same_key_answers_the_same(any_portal: PortalServer) -> None:
    tid = quoted_ticket(any_portal)["id"]
    path = f"/api/tickets/{tid}/approve"
    key = {"Idempotency-Key": f"approve-{tid}"}
    first = any_portal.api(LANDLORD, "POST", path, json={}, headers=key)
    again = any_portal.api(LANDLORD, "POST", path, json={}, headers=key)
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json() and first.json()["status"] == "APPROVED"
    assert again.headers["idempotent-replayed"] == "true"
    # without the key, a second approve is refused by the state machine
    twice = any_portal.api(LANDLORD, "POST", path, json={})
    assert twice.status_code == 409 and twice.json()["allowed"] == ["CANCELLED", "IN_PROGRESS"]
    rows = any_portal.api(LANDLORD, "GET", f"/api/tickets/{tid}/timeline").json()
    assert [r["eventType"] for r in rows].count("approved") == 1


def test_approve_is_the_landlords(any_portal: PortalServer) -> None:
    tid = quoted_ticket(any_portal)["id"]
    for who in (RENTER, CONTRACTOR, OPS):
        answer = any_portal.api(who, "POST", f"/api/tickets/{tid}/approve", json={})
        assert answer.status_code == 403
    answer = any_portal.api(LANDLORD2, "POST", f"/api/tickets/{tid}/approve", json={})
    assert answer.status_code == 404
    open_one = new_ticket(any_portal)["id"]
    refused = any_portal.api(LANDLORD, "POST", f"/api/tickets/{open_one}/approve", json={})
    assert refused.status_code == 409 and refused.json()["allowed"] == ["CANCELLED", "TRIAGED"]


def test_concurrent_approves_with_one_key_approve_once(any_portal: PortalServer) -> None:
    tid = quoted_ticket(any_portal)["id"]
    token = any_portal.login(LANDLORD)
    answers: list[Any] = []
    start = threading.Barrier(4)

    def approve() -> None:
        import httpx

        start.wait()
        answers.append(
            httpx.post(
                f"{any_portal.url}/api/tickets/{tid}/approve",
                json={},
                headers={"Authorization": f"Bearer {token}", "Idempotency-Key": f"k-{tid}"},
                timeout=30,
            )
        )

    threads = [threading.Thread(target=approve) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [a.status_code for a in answers] == [200] * 4, [a.text for a in answers]
    assert len({a.text for a in answers}) == 1
    rows = any_portal.api(LANDLORD, "GET", f"/api/tickets/{tid}/timeline").json()
    assert [r["eventType"] for r in rows].count("approved") == 1
