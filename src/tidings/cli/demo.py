"""``tidings demo``: seed 004's portal (:mod:`tidings.portal`) with its
embedded hub on the SQLite default, seeded with two landlord
organisations, their renters, a contractor and OPS, and some history;
beside it on the same hub a demo tenant, users in several roles and a
producer publishing realistic QMS, training and task events (seed 000),
plus instructions to watch them.

Users of the QMS tenant (``acme``, an AMO in seed 000's words):

* ``alice`` - quality manager: all QMS events, PII included, tasks;
* ``bob``   - auditor: QMS events without PII;
* ``carol`` - technician: only her own tasks and trainings;
* ``olga``  - platform operator: every tenant's QMS events.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import secrets
import shlex
import socket
import sys
from pathlib import Path
from typing import Any

from tidings.automation.packs import read_pack
from tidings.core.envelope import now_iso
from tidings.errors import TidingsError
from tidings.http.server import TidingsServer, uvicorn_config
from tidings.logs import configure_logging
from tidings.node import Tidings
from tidings.portal.app import create_portal
from tidings.portal.seed import ACCOUNTS, DEMO_PASSWORD
from tidings.portal.settings import PAYMENT_SECRET_ENV, from_env
from tidings.services.auth import OPERATOR, mint_token
from tidings.services.identity import UserChange

log = logging.getLogger("tidings.cli.demo")
TENANT = "acme"
SHOWN_FIRST = ("tenant@example.com", "landlord@example.com")  # seed 004's two browsers
DEMO_HOST = "127.0.0.1"  # the settings' default host: the demo serves loopback only
ROLES = {
    "quality_manager": [
        "qms.read",
        "qms.pii.read",
        "training.manage",
        "tasks.manage",
        "lms.read",
        "awareness.read",
    ],
    "auditor": ["qms.read", "lms.read"],
    "technician": [],
    "operator": ["qms.read"],
}
USERS = [  # (tenant, user id, user)
    (TENANT, "alice", UserChange("quality_manager")),
    (TENANT, "bob", UserChange("auditor")),
    (TENANT, "carol", UserChange("technician", resources=["hangar-2"])),
    ("platform", "olga", UserChange("operator", platform=True, platform_tenants=["*"])),
]
ACTORS = [
    {"userId": "alice", "name": "A. Auditor", "department": "QUALITY"},
    {"userId": "dave", "name": "D. Planner", "department": "PLANNING"},
    {"userId": "carol", "name": "C. Tech", "department": "MAINTENANCE"},
]


def demo_event(n: int, rng: random.Random) -> dict[str, Any]:
    """One realistic event of seed 000's kinds (and seed 001's LMS, which
    the installed rule pack turns into certificates and notifications)."""
    actor = rng.choice(ACTORS)
    kind = n % 6
    if kind == 5:
        learner = rng.choice(["carol", "bob"])
        data: dict[str, Any] = {
            "courseId": f"hf-{rng.randint(101, 104)}",
            "userId": learner,
            "completedAt": now_iso(),
            "score": rng.randint(70, 100),
        }
        if rng.random() < 0.5:
            data["campaignId"] = "awareness-2026-q4"
        return {"type": "course.completed", "entityId": data["courseId"], "data": data}
    if kind == 0:
        car = f"car-{rng.randint(100, 140)}"
        return {
            "type": rng.choice(["qms.car.created", "qms.car.updated", "qms.car.escalated"]),
            "entityId": car,
            "actor": actor,
            "metadata": {
                "status": rng.choice(["OPEN", "IN_PROGRESS", "UNDER_REVIEW"]),
                "priority": rng.choice(["LOW", "MEDIUM", "HIGH"]),
                "amoId": TENANT,
                "departmentCode": "QUALITY",
                "reporterEmail": "reporter@acme.example",
            },
            "data": {
                "carId": car,
                "title": rng.choice(["Torque seal missing", "Expired calibration"]),
            },
        }
    if kind == 1:
        return {
            "type": "qms.audit.status_changed",
            "entityId": f"audit-{rng.randint(1, 9)}",
            "actor": actor,
            "metadata": {
                "status": rng.choice(["PLANNED", "IN_PROGRESS", "CLOSED"]),
                "amoId": TENANT,
            },
        }
    if kind == 2:
        return {
            "type": "tasks.assignment.created",
            "entityId": f"task-{n}",
            "actor": actor,
            "data": {"assigneeId": rng.choice(["carol", "bob"]), "title": "Inspect hangar door"},
        }
    if kind == 3:
        return {
            "type": "training.assignment.created",
            "entityId": f"training-{n}",
            "actor": actor,
            "data": {"userId": rng.choice(["carol", "bob"]), "course": "Human factors refresher"},
        }
    return {
        "type": "qms.document.published",
        "entityId": f"doc-{rng.randint(1, 30)}",
        "actor": actor,
        "metadata": {"amoId": TENANT, "departmentCode": "QUALITY"},
    }


async def provision(tidings: Tidings) -> None:
    identity = tidings.identity
    await identity.put_tenant(OPERATOR, TENANT, "Acme Aviation (AMO)", {"kind": "amo"})
    await identity.put_tenant(OPERATOR, "platform", "Platform operations", {})
    for role, permissions in ROLES.items():
        await identity.put_role(OPERATOR, role, permissions, None)
    for tenant_id, user_id, user in USERS:
        await identity.put_user(OPERATOR, tenant_id, user_id, user)
    await tidings.rules.install(OPERATOR, read_pack("lms-awareness"), TENANT, author="demo")


async def produce(tidings: Tidings, rate: float) -> None:
    rng = random.Random(7)
    for n in itertools.count():
        event = {"tenantId": TENANT, **demo_event(n, rng)}
        try:
            await tidings.publish(event)
        except TidingsError as exc:  # shutting down
            log.info("demo producer stopped: %s", exc)
            return
        await asyncio.sleep(1.0 / rate)


def instructions(url: str, admin_key: str, secret: str, payment_secret: str) -> str:
    tokens = {
        user_id: mint_token(secret, tenant_id=tenant_id, user_id=user_id, ttl_s=12 * 3600)
        for tenant_id, user_id, _ in USERS
    }
    others = ", ".join(
        e for e in ACCOUNTS if e not in ("tenant@example.com", "landlord@example.com")
    )
    lines = [
        "",
        f"Tidings demo running at {url}  (SQLite, press Ctrl+C to stop)",
        "",
        f"The tenant-landlord portal (seed 004): {url}/login   password {DEMO_PASSWORD}",
        "  Open it in two browsers: in one sign in as tenant@example.com and report a",
        f"  problem ({url}/tickets/new); in the other as landlord@example.com, whose",
        f"  maintenance board ({url}/maintenance) shows it at once.",
        f"  Other accounts: {others}.",
        f"  Payment webhook secret ({PAYMENT_SECRET_ENV}): {payment_secret}",
        "",
        f"Beside it on the same hub, tenant '{TENANT}' gets live QMS events.",
        "Watch alice's stream (quality manager; sees QMS events with PII):",
        f"  curl -N -H {shlex.quote('Authorization: Bearer ' + tokens['alice'])} {url}/api/events",
        "",
        "Or bob's in the terminal (auditor; no PII), narrowed to CAR events:",
        f"  {tidings_command()} tail --url {url} --token {tokens['bob']} --types 'qms.car.*'",
        "",
        f"In a browser (carol, technician): {url}/live#token={tokens['carol']}",
        "Automation: the lms-awareness rule pack turns each course.completed into a",
        "certificate.issued event, campaign progress and a notification for the learner:",
        f"  curl -H {shlex.quote('Authorization: Bearer ' + admin_key)} {url}/api/admin/jobs",
        "",
        f"Integration Manager (health, catalog, rules, live log, failed work): {url}/admin",
        f"  log in with the admin key: {admin_key}",
        "",
        f"API docs: {url}/docs    metrics: {url}/metrics",
        "",
    ]
    return "\n".join(lines)


def tidings_command() -> str:
    """How to run ``tidings`` again from this shell: the script this demo
    was started with, as typed (``.venv/bin/tidings`` after the README's
    first command: inside a venv that was never activated, a bare
    ``tidings`` is not on PATH), else ``python -m tidings``."""
    script = Path(sys.argv[0])
    if script.name == "tidings" and script.is_file():
        return shlex.quote(str(script))
    return f"{shlex.quote(sys.executable)} -m tidings"


def port_taken(host: str, port: int) -> bool:
    """Whether something already listens on ``host:port`` (checked before
    starting, so the demo can say so in one line)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


async def _main(port: int, database_url: str, rate: float, duration: float | None) -> None:
    admin_key = "demo-admin-" + secrets.token_hex(12)
    secret = secrets.token_hex(32)
    portal_settings = from_env(
        database_url=database_url,
        host=DEMO_HOST,
        port=port,
        admin_key=admin_key,
        jwt_secret=secret,
        sqlite_synchronous="NORMAL",
        log_level="warning",
    )
    settings = portal_settings.hub
    configure_logging(settings.log_level)
    payment_secret = portal_settings.payment_secret
    app = create_portal(portal_settings, seed=True)
    hub = app.state.portal.hub
    server = TidingsServer(uvicorn_config(app, settings), hub)
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            await serving  # surfaces the start-up error
            return
        await asyncio.sleep(0.05)
    tidings = hub.tidings
    await provision(tidings)
    url = f"http://{settings.host}:{settings.port}"
    print(instructions(url, admin_key, secret, payment_secret), flush=True)
    producer = asyncio.create_task(produce(tidings, rate))
    # uvicorn owns Ctrl+C / SIGTERM (it sets should_exit); --duration too.
    done, _ = await asyncio.wait({serving}, timeout=duration)
    if not done:
        server.should_exit = True
        await serving
    producer.cancel()
    await asyncio.gather(producer, return_exceptions=True)


def run_demo(*, port: int, database_url: str, rate: float, duration: float | None) -> None:
    try:
        import uvloop

        uvloop.run(_main(port, database_url, rate, duration))
    except ImportError:
        asyncio.run(_main(port, database_url, rate, duration))
