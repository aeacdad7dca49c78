"""Payload validation on vs off: what checking every event against its
catalog schema costs the publish path.

In one process, on a throw-away SQLite file (the embedded default), a
Tidings node publishes the same mix of catalog events with
``validate_payloads`` on and then off: preparation (parse, catalog lookup,
schema validation, audiences, id) plus the durable group-commit append,
from concurrent in-process publishers. Rounds alternate on/off and the best
round of each counts, so background noise hits both alike. Also reported:
the preparation cost alone per event (no storage), on and off.

The issue's bar: throughput with validation on / off stays above 0.8.
``run(quick)`` returns the JSON-able result; ``python -m
benchmarks.validation [--quick]`` prints it.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tidings.config import Settings
from tidings.node import Tidings
from tidings.services.auth import Principal

TENANT = "bench-validation"
NOW = "2025-11-06T09:00:00Z"
OPERATOR = Principal(kind="admin", scopes=frozenset({"admin", "publish"}))
TARGET_RATIO = 0.8


def sample_events(tenant: str) -> list[dict[str, Any]]:
    """A mix of shipped types: flat, nested, enum and optional fields."""
    return [
        {
            "type": "TICKET_STATUS_CHANGED",
            "tenantId": tenant,
            "entityId": "t-1",
            "data": {
                "tenantId": tenant,
                "ticketId": "t-1",
                "previousStatusId": "open",
                "newStatusId": "in_progress",
                "actorUserId": "u-7",
                "changedAt": NOW,
                "reason": "picked up",
            },
        },
        {
            "type": "TICKET_MESSAGE_ADDED",
            "tenantId": tenant,
            "data": {
                "tenantId": tenant,
                "ticketId": "t-1",
                "messageId": "m-1",
                "visibility": "public",
                "authorId": "u-7",
                "authorType": "user",
                "channel": "portal",
                "createdAt": NOW,
                "attachmentsCount": 2,
            },
        },
        {
            "type": "PAYMENT_APPLIED",
            "tenantId": tenant,
            "data": {
                "tenantId": tenant,
                "paymentId": "p-1",
                "appliedAt": NOW,
                "appliedByUserId": "u-2",
                "applications": [
                    {"invoiceId": "i-1", "amountApplied": 120.5},
                    {"invoiceId": "i-2", "amountApplied": 79.5},
                ],
            },
        },
        {
            "type": "qms.car.updated",
            "tenantId": tenant,
            "entityId": "car-9",
            "data": {"carId": "car-9", "status": "IN_PROGRESS", "priority": "HIGH"},
        },
        {
            "type": "course.completed",
            "tenantId": tenant,
            "data": {"courseId": "c-1", "userId": "u-3", "completedAt": NOW, "score": 91},
        },
    ]


def _settings(path: Path, validate: bool) -> Settings:
    return Settings(
        database_url=f"sqlite:///{path}",
        validate_payloads=validate,
        poll_s=60.0,
        heartbeat_s=3600.0,
    )


async def _publish_round(
    node: Tidings, events: list[dict[str, Any]], total: int, publishers: int
) -> float:
    """Events per second for ``total`` publishes from ``publishers`` tasks."""
    per_task = total // publishers

    async def publisher(offset: int) -> None:
        for i in range(per_task):
            await node.publish(events[(offset + i) % len(events)], principal=OPERATOR)

    started = time.perf_counter()
    await asyncio.gather(*(publisher(p) for p in range(publishers)))
    return per_task * publishers / (time.perf_counter() - started)


def _prepare_us(node: Tidings, events: list[dict[str, Any]], count: int) -> float:
    started = time.perf_counter()
    for i in range(count):
        node.ingest.prepare(events[i % len(events)], OPERATOR)
    return (time.perf_counter() - started) / count * 1e6


async def _measure(quick: bool) -> dict[str, Any]:
    total = 2_000 if quick else 20_000
    rounds = 2 if quick else 3
    publishers = 32
    prepare_count = 2_000 if quick else 20_000
    best: dict[bool, float] = {True: 0.0, False: 0.0}
    prepare: dict[bool, float] = {True: float("inf"), False: float("inf")}
    with tempfile.TemporaryDirectory(prefix="tidings-bench-validation-") as tmp:
        nodes: dict[bool, Tidings] = {}
        for validate in (True, False):
            node = Tidings(_settings(Path(tmp) / f"v{int(validate)}.db", validate))
            await node.start()
            await node.store.put_tenant(TENANT, "Validation bench", {})
            nodes[validate] = node
        try:
            events = sample_events(TENANT)
            for node in nodes.values():  # warm up: compile validators, fill caches
                await _publish_round(node, events, publishers * 10, publishers)
            for _ in range(rounds):
                for validate in (True, False):
                    node = nodes[validate]
                    best[validate] = max(
                        best[validate], await _publish_round(node, events, total, publishers)
                    )
                    prepare[validate] = min(
                        prepare[validate], _prepare_us(node, events, prepare_count)
                    )
        finally:
            for node in nodes.values():
                await node.stop()
    ratio = best[True] / best[False] if best[False] else 0.0
    return {
        "events": total,
        "publishers": publishers,
        "rounds": rounds,
        "publish_per_s_validation_on": round(best[True]),
        "publish_per_s_validation_off": round(best[False]),
        "ratio": round(ratio, 3),
        "target_ratio": TARGET_RATIO,
        "met": ratio >= TARGET_RATIO,
        "prepare_us_validation_on": round(prepare[True], 2),
        "prepare_us_validation_off": round(prepare[False], 2),
        "validation_us_per_event": round(prepare[True] - prepare[False], 2),
    }


def run(quick: bool) -> dict[str, Any]:
    return asyncio.run(_measure(quick))


if __name__ == "__main__":
    print(json.dumps(run("--quick" in sys.argv), indent=2))
