"""Automation: what the outbox costs publishing, and how fast the worker
runs jobs.

1. Publish with 0 vs 10 matching rules: two Tidings nodes on throw-away
   SQLite files publish the same ``course.completed`` events (32 concurrent
   in-process publishers, then batches of 500); one node has 10 enabled
   rules matching every event, so each append also writes 10 job rows in
   its transaction. Workers are off: this measures the outbox alone. Rounds
   alternate and the best of each counts. The bar: 10 rules must not halve
   throughput (ratio >= 0.5).
2. Jobs/s: N ``trigger_webhook`` jobs (signed per Standard Webhooks,
   every attempt recorded) through one worker to a fast receiver (uvicorn
   in its own process, on the other core), against the obvious alternative
   measured in the same run: the application POSTing the same payloads
   itself with httpx at the same concurrency (no durability, no signature,
   no records).

``run(quick)`` returns the JSON-able result; ``python -m
benchmarks.automation [--quick]`` prints it.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from tidings.bench import servers
from tidings.config import Settings
from tidings.node import Tidings
from tidings.services.auth import Principal
from tidings.store.base import JobFilter

TENANT = "bench-automation"
OPERATOR = Principal(kind="admin", scopes=frozenset({"admin", "publish"}))
TARGET_RATIO = 0.5
RECEIVER = """
import uvicorn
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    headers = [(b"content-length", b"2")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"ok"})
uvicorn.run(app, host="127.0.0.1", port=%d, loop="uvloop", http="httptools", log_level="error",
            access_log=False)
"""


def event(i: int) -> dict[str, Any]:
    return {
        "type": "course.completed",
        "tenantId": TENANT,
        "data": {
            "courseId": f"c-{i % 50}",
            "userId": f"u-{i % 997}",
            "completedAt": "2026-11-22T10:00:00Z",
            "score": i % 100,
        },
    }


def settings(path: Path, **extra: Any) -> Settings:
    base: dict[str, Any] = {
        "database_url": f"sqlite:///{path}",
        "poll_s": 60.0,
        "heartbeat_s": 3600.0,
        "run_jobs": False,
        "allow_private_webhooks": True,
    }
    return Settings(**{**base, **extra})


async def node_with_rules(path: Path, rules: int, action: dict[str, Any], **extra: Any) -> Tidings:
    node = Tidings(settings(path, **extra))
    node.register_job("noop", lambda ctx, args: None)
    await node.start()
    await node.store.put_tenant(TENANT, "Automation bench", {})
    for r in range(rules):
        body = {
            "name": f"bench rule {r}",
            "tenantId": TENANT,
            "trigger": {
                "type": "course.*",
                "conditions": {"path": "data.score", "op": "gte", "value": 0},
            },
            "action": action,
        }
        await node.rulebook.save(body)
    return node


async def publish_round(node: Tidings, total: int, publishers: int, batch: int) -> float:
    per_task = total // publishers // batch

    async def publisher(p: int) -> None:
        for i in range(per_task):
            if batch == 1:
                await node.publish(event(p * per_task + i), principal=OPERATOR)
            else:
                await node.publish_many(
                    [event(i * batch + j) for j in range(batch)], principal=OPERATOR
                )

    started = time.perf_counter()
    await asyncio.gather(*(publisher(p) for p in range(publishers)))
    return per_task * publishers * batch / (time.perf_counter() - started)


async def outbox_cost(tmp: Path, quick: bool) -> dict[str, Any]:
    total = 2_000 if quick else 20_000
    rounds = 2 if quick else 3
    run_job = {"type": "run_job", "config": {"name": "noop"}}
    nodes = {n: await node_with_rules(tmp / f"rules{n}.db", n, run_job) for n in (0, 10)}
    best: dict[tuple[int, str], float] = {}
    try:
        for node in nodes.values():
            await publish_round(node, 640, 32, 1)  # warm up
        for _ in range(rounds):
            for phase, publishers, batch in (("single", 32, 1), ("batch", 4, 500)):
                for n, node in nodes.items():
                    rate = await publish_round(node, total, publishers, batch)
                    best[n, phase] = max(best.get((n, phase), 0.0), rate)
    finally:
        for node in nodes.values():
            await node.stop()
    result: dict[str, Any] = {
        "events_per_round": total,
        "rounds": rounds,
    }
    for phase in ("single", "batch"):
        ratio = best[10, phase] / best[0, phase]
        result[phase] = {
            "events_per_s_0_rules": round(best[0, phase]),
            "events_per_s_10_rules": round(best[10, phase]),
            "ratio": round(ratio, 3),
            "met": ratio >= TARGET_RATIO,
        }
    result["target_ratio"] = TARGET_RATIO
    return result


def start_receiver() -> tuple[subprocess.Popen[bytes], str]:
    port = servers.free_port()
    command = servers.pinned([sys.executable, "-c", RECEIVER % port], servers.CLIENT_CORE)
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/hook"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            httpx.post(url, content=b"{}", timeout=1)
            return proc, url
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("the webhook receiver did not start")


async def worker_rate(tmp: Path, url: str, quick: bool, concurrency: int) -> dict[str, Any]:
    count = 1_000 if quick else 10_000
    action = {
        "type": "trigger_webhook",
        "config": {"url": url, "secret": "whsec_" + "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3"},
    }
    path = tmp / "jobs.db"
    producer = await node_with_rules(path, 1, action)
    for start in range(0, count, 500):
        await producer.publish_many(
            [event(i) for i in range(start, start + 500)], principal=OPERATOR
        )
    await producer.stop()
    node = Tidings(settings(path, run_jobs=True, job_concurrency=concurrency, job_poll_s=0.05))
    started = time.perf_counter()
    await node.start()
    done: dict[str, int] = {}
    try:
        while done.get("succeeded", 0) < count:
            await asyncio.sleep(0.05)
            done = await node.store.jobs.count_jobs(JobFilter())
            if time.perf_counter() - started > 300:
                break
        elapsed = time.perf_counter() - started
    finally:
        await node.stop()
    return {
        "jobs": count,
        "succeeded": done.get("succeeded", 0),
        "elapsed_s": round(elapsed, 3),
        "jobs_per_s": round(done.get("succeeded", 0) / elapsed, 1),
    }


async def plain_posts(url: str, quick: bool, concurrency: int) -> dict[str, Any]:
    count = 1_000 if quick else 10_000
    payloads = [
        json.dumps({"type": "course.completed", "data": event(i)}).encode() for i in range(count)
    ]
    queue = iter(payloads)
    async with httpx.AsyncClient(trust_env=False) as client:

        async def poster() -> None:
            for body in queue:
                await client.post(url, content=body, headers={"content-type": "application/json"})

        started = time.perf_counter()
        await asyncio.gather(*(poster() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return {
        "posts": count,
        "elapsed_s": round(elapsed, 3),
        "posts_per_s": round(count / elapsed, 1),
    }


async def measure(quick: bool) -> dict[str, Any]:
    concurrency = 16
    with tempfile.TemporaryDirectory(prefix="tidings-bench-automation-") as name:
        tmp = Path(name)
        outbox = await outbox_cost(tmp, quick)
        receiver, url = start_receiver()
        try:
            worker = await worker_rate(tmp, url, quick, concurrency)
            plain = await plain_posts(url, quick, concurrency)
        finally:
            receiver.kill()
            receiver.wait()
    ratio = worker["jobs_per_s"] / plain["posts_per_s"] if plain["posts_per_s"] else 0.0
    return {
        "outbox": outbox,
        "worker": {**worker, "concurrency": concurrency},
        "baseline_plain_httpx": plain,
        "worker_vs_plain_ratio": round(ratio, 3),
    }


def run(quick: bool) -> dict[str, Any]:
    try:  # the loop `tidings serve` runs on
        import uvloop

        return uvloop.run(measure(quick))
    except ImportError:
        return asyncio.run(measure(quick))


if __name__ == "__main__":
    print(json.dumps(run("--quick" in sys.argv), indent=2))
