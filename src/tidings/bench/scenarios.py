"""The client-side workloads, run inside the client process (core 1).

Each takes the server :class:`~tidings.bench.servers.Target` (as JSON), the
scenario's parameters and an ``emit`` callback for progress lines, and
returns a JSON-able result. Everything is bounded by counts and times.

* ``fanout``    - s1/s2/scale: N subscribers, E events at R/s from one publisher
  (for scale, the subscribers are spread over several server processes).
* ``sustained`` - s3: N subscribers, P publishers back to back for D seconds.
* ``publish``   - single POSTs from C publishers, then batches, for D seconds each.
* ``memory``    - server RSS before/after N idle streams.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from time import perf_counter
from typing import Any

import orjson

from tidings.bench.http_client import HTTPConnection, build_request, connect
from tidings.bench.servers import EVENT_TYPE
from tidings.bench.sse_client import Collector, SSEConnection, close_all, merged, open_subscribers
from tidings.bench.stats import CpuMeter, TreeCpuMeter, latency_summary, rss_kib

Emit = Callable[..., None]
Params = dict[str, Any]
Target = dict[str, Any]


def stream_ports(target: Target) -> list[int]:
    """The ports subscribers connect to (several for a Tidings cluster)."""
    return list(target.get("stream_ports") or [target["port"]])


def server_pids(target: Target) -> list[int]:
    return list(target.get("server_pids") or [target["pid"]])


class ServerCpu:
    """CPU use over a window of the server process(es) - summed, and each
    when there are several - and of PostgreSQL when it runs on this machine."""

    def __init__(self, target: Target) -> None:
        self.servers = [CpuMeter(pid) for pid in server_pids(target)]
        database = target.get("database_pid")
        self.database = TreeCpuMeter(database) if database else None

    def start(self, wall: float) -> None:
        for meter in self.servers:
            meter.start(wall)
        if self.database is not None:
            self.database.start(wall)

    def result(self, wall: float) -> dict[str, Any]:
        each = [meter.percent(wall) for meter in self.servers]
        known = [value for value in each if value is not None]
        out: dict[str, Any] = {
            "server_cpu_pct": round(sum(known), 1) if len(known) == len(each) else None
        }
        if len(each) > 1:
            out["server_cpu_pct_each"] = each
        if self.database is not None:
            out["database_cpu_pct"] = self.database.percent(wall)
        return out


def envelope(target: Target, seq: int) -> dict[str, Any]:
    return {
        "type": EVENT_TYPE,
        "tenantId": target["tenant_id"],
        "entityId": f"car-{seq % 1000}",
        "data": {"seq": seq, "status": "OPEN", "title": "Corrective action request"},
    }


class Publisher:
    """Builds publish requests for a target and sends them on its own
    keep-alive connections."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.connections: list[HTTPConnection] = []
        self.ack_latencies: list[float] = []
        self.errors: dict[str, int] = {}

    async def open(self, count: int) -> None:
        self.connections = [
            await connect(self.target["host"], self.target["port"]) for _ in range(count)
        ]

    def close(self) -> None:
        for connection in self.connections:
            connection.close()

    def single(self, seq: int) -> bytes:
        t = self.target
        body = orjson.dumps(envelope(t, seq))
        return build_request(
            "POST", t["host"], t["port"], t["publish_path"], auth=t["publish_auth"], body=body
        )

    def batch(self, first_seq: int, size: int) -> bytes:
        t = self.target
        events = [envelope(t, seq) for seq in range(first_seq, first_seq + size)]
        body = orjson.dumps({"events": events})
        return build_request(
            "POST", t["host"], t["port"], t["batch_path"], auth=t["publish_auth"], body=body
        )

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1

    async def send(self, connection: HTTPConnection, request: bytes, sent: float) -> bool:
        """Send ``request`` (``sent`` = perf_counter just before the write);
        True on 202."""
        try:
            status, body = await connection.send(request)
        except ConnectionError as exc:
            self.error(f"connection: {exc}"[:80])
            return False
        self.ack_latencies.append(perf_counter() - sent)
        if status != 202:
            self.error(f"HTTP {status}: {body[:120].decode(errors='replace')}")
            return False
        return True


def _subscriber_summary(collector: Collector, wanted: int, connect_s: float) -> dict[str, Any]:
    return {
        "subscribers": collector.connected,
        "subscribers_wanted": wanted,
        "connect_s": round(connect_s, 2),
        "connects_per_s": round(collector.connected / connect_s, 1) if connect_s > 0 else None,
        "refused": dict(collector.refused),
        "dropped": collector.dropped,
        "controls": dict(collector.controls),
        "client_errors": dict(collector.errors),
    }


def _offset(emit: Emit, phase: str, before: int, total: int) -> Callable[[int], None]:
    """A progress callback for one part of a phase that started at ``before``."""
    return lambda done: emit(phase, before + done, total)


async def _connect(
    target: Target, count: int, collectors: list[Collector], emit: Emit
) -> tuple[list[SSEConnection], float]:
    """Open ``count`` streams spread evenly over the target's stream ports,
    one collector per port."""
    ports = stream_ports(target)
    started = perf_counter()
    emit("connect", 0, count)
    connections: list[SSEConnection] = []
    for index, (port, collector) in enumerate(zip(ports, collectors, strict=True)):
        share = count // len(ports) + (1 if index < count % len(ports) else 0)
        before = sum(c.connected for c in collectors)
        connections += await open_subscribers(
            target["host"],
            port,
            target["stream_path"],
            target["stream_auth"],
            share,
            collector,
            progress=_offset(emit, "connect", before, count),
        )
    if not all(collector.connected for collector in collectors):
        total = merged(collectors)
        raise RuntimeError(
            f"no stream opened on some server (refused: {dict(total.refused)}, "
            f"errors: {dict(total.errors)})"
        )
    return connections, perf_counter() - started


async def _drain(
    received: Callable[[], int],
    expected: Callable[[], int],
    emit: Emit,
    cap_s: float,
    stall_s: float,
) -> None:
    """Wait until every expected delivery arrived, nothing arrived for
    ``stall_s``, or ``cap_s`` passed."""
    deadline = perf_counter() + cap_s
    seen, changed = received(), perf_counter()
    while received() < expected() and perf_counter() < deadline:
        await asyncio.sleep(0.05)
        now = perf_counter()
        if received() != seen:
            seen, changed = received(), now
        elif now - changed > stall_s:
            break
        emit("deliver", received(), expected())


def _delivery_result(
    collector: Collector, expected: int, first_send: float, server_cpu: dict[str, Any], cpu0: float
) -> dict[str, Any]:
    end = collector.last_receive or perf_counter()
    window = max(1e-9, end - first_send)
    return {
        "expected": expected,
        "received": collector.received,
        "loss": expected - collector.received,
        "duplicates": collector.duplicates,
        "stray": collector.stray,
        "window_s": round(window, 3),
        "deliveries_per_s": round(collector.received / window, 1),
        "latency": latency_summary(collector.latencies),
        **server_cpu,
        "client_cpu_pct": round(100 * (time.process_time() - cpu0) / window, 1),
    }


def _by_process(
    ports: list[int], collectors: list[Collector], accepted: int
) -> dict[str, dict[str, Any]]:
    """Deliveries and latency per server process ("1" received the publishes)."""
    return {
        str(number): {
            "port": port,
            "subscribers": collector.connected,
            "received": collector.received,
            "loss": accepted * collector.connected - collector.received,
            "dropped": collector.dropped,
            "latency": latency_summary(collector.latencies),
        }
        for number, (port, collector) in enumerate(zip(ports, collectors, strict=True), 1)
    }


async def fanout(target: Target, params: Params, emit: Emit) -> dict[str, Any]:
    """s1/s2/scale: ``subscribers`` streams (spread over the stream ports);
    ``events`` events at ``rate``/s, all published to the first server."""
    count, events, rate = params["subscribers"], params["events"], params["rate"]
    ports = stream_ports(target)
    collectors = [Collector() for _ in ports]
    send_times = [0.0] * events
    for collector in collectors:
        collector.send_times = send_times
    connections, connect_s = await _connect(target, count, collectors, emit)
    publisher = Publisher(target)
    await publisher.open(4)
    free: asyncio.Queue[HTTPConnection] = asyncio.Queue()
    for connection in publisher.connections:
        free.put_nowait(connection)
    accepted = 0
    await asyncio.sleep(params.get("settle_s", 1.0))

    async def publish_one(seq: int) -> None:
        nonlocal accepted
        connection = await free.get()
        try:
            request = publisher.single(seq)
            send_times[seq] = sent = perf_counter()
            ok = await publisher.send(connection, request, sent)
            accepted += ok  # not `+= await`: that reads `accepted` before awaiting
        finally:
            free.put_nowait(connection)

    server = ServerCpu(target)
    t0 = perf_counter()
    server.start(t0)
    cpu0 = time.process_time()
    tasks = []
    for seq in range(events):
        delay = t0 + seq / rate - perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(publish_one(seq)))
        emit("publish", seq + 1, events)
    await asyncio.gather(*tasks)
    publish_s = perf_counter() - t0

    def received() -> int:
        return sum(c.received for c in collectors)

    def expected() -> int:
        return accepted * sum(c.connected for c in collectors)

    await _drain(received, expected, emit, params["drain_cap_s"], params.get("stall_s", 5.0))
    collector = merged(collectors)
    server_cpu = server.result(collector.last_receive or perf_counter())
    result = {
        **_subscriber_summary(collector, count, connect_s),
        "events": accepted,
        "rate": rate,
        "offered_per_s": rate * collector.connected,
        "publish_s": round(publish_s, 3),
        **_delivery_result(collector, expected(), t0, server_cpu, cpu0),
        "publish_ack": latency_summary(publisher.ack_latencies),
        "publish_errors": publisher.errors,
    }
    if len(collectors) > 1:
        result["by_process"] = _by_process(ports, collectors, accepted)
    publisher.close()
    close_all(connections)
    return result


async def sustained(target: Target, params: Params, emit: Emit) -> dict[str, Any]:
    """s3: ``subscribers`` streams; ``publishers`` connections posting back
    to back (each awaits its 202) for ``duration_s``."""
    count, publishers, duration = params["subscribers"], params["publishers"], params["duration_s"]
    collector = Collector()
    connections, connect_s = await _connect(target, count, [collector], emit)
    publisher = Publisher(target)
    await publisher.open(publishers)
    await asyncio.sleep(params.get("settle_s", 1.0))
    accepted = 0
    send_times = collector.send_times
    server = ServerCpu(target)
    t0 = perf_counter()
    server.start(t0)
    cpu0 = time.process_time()
    end = t0 + duration

    async def loop(connection: HTTPConnection) -> None:
        nonlocal accepted
        while perf_counter() < end:
            seq = len(send_times)
            request = publisher.single(seq)
            send_times.append(perf_counter())
            ok = await publisher.send(connection, request, send_times[seq])
            accepted += ok
            if not ok:
                await asyncio.sleep(0.01)

    async def ticker() -> None:
        while perf_counter() < end:
            emit("publish", round(perf_counter() - t0, 1), duration)
            await asyncio.sleep(0.25)

    await asyncio.gather(ticker(), *(loop(c) for c in publisher.connections))
    publish_s = perf_counter() - t0

    def expected() -> int:
        return accepted * collector.connected

    def received() -> int:
        return collector.received

    await _drain(received, expected, emit, params["drain_cap_s"], params.get("stall_s", 5.0))
    server_cpu = server.result(collector.last_receive or perf_counter())
    result = {
        **_subscriber_summary(collector, count, connect_s),
        "publishers": publishers,
        "events": accepted,
        "publish_s": round(publish_s, 3),
        "publish_per_s": round(accepted / publish_s, 1),
        **_delivery_result(collector, expected(), t0, server_cpu, cpu0),
        "publish_ack": latency_summary(publisher.ack_latencies),
        "publish_errors": publisher.errors,
    }
    publisher.close()
    close_all(connections)
    return result


async def _publish_phase(
    target: Target, emit: Emit, phase: str, concurrency: int, duration: float, batch: int
) -> dict[str, Any]:
    publisher = Publisher(target)
    await publisher.open(concurrency)
    for connection in publisher.connections:  # warm-up, not measured
        request = publisher.single(0) if batch == 1 else publisher.batch(0, batch)
        await publisher.send(connection, request, perf_counter())
    publisher.ack_latencies.clear()
    publisher.errors.clear()
    accepted = 0
    next_seq = 1
    server = ServerCpu(target)
    t0 = perf_counter()
    server.start(t0)
    end = t0 + duration

    async def loop(connection: HTTPConnection) -> None:
        nonlocal accepted, next_seq
        while perf_counter() < end:
            first, next_seq = next_seq, next_seq + batch
            request = publisher.single(first) if batch == 1 else publisher.batch(first, batch)
            if await publisher.send(connection, request, perf_counter()):
                accepted += batch

    async def ticker() -> None:
        while perf_counter() < end:
            emit(phase, round(perf_counter() - t0, 1), duration)
            await asyncio.sleep(0.25)

    await asyncio.gather(ticker(), *(loop(c) for c in publisher.connections))
    elapsed = perf_counter() - t0
    publisher.close()
    return {
        "concurrency": concurrency,
        "batch": batch,
        "requests": len(publisher.ack_latencies),
        "events": accepted,
        "elapsed_s": round(elapsed, 3),
        "events_per_s": round(accepted / elapsed, 1),
        "latency": latency_summary(publisher.ack_latencies),
        "errors": publisher.errors,
        **server.result(perf_counter()),
    }


async def publish(target: Target, params: Params, emit: Emit) -> dict[str, Any]:
    """Durable publish throughput: single POSTs, then batches."""
    batch_s = params["batch_duration_s"] if "batch_duration_s" in params else params["duration_s"]
    single = await _publish_phase(
        target, emit, "single", params["concurrency"], params["duration_s"], 1
    )
    batched = await _publish_phase(
        target,
        emit,
        "batch",
        params["batch_concurrency"],
        batch_s,
        params["batch_size"],
    )
    return {"single": single, "batch": batched}


async def memory(target: Target, params: Params, emit: Emit) -> dict[str, Any]:
    """Resident memory per idle stream: server RSS before and after opening
    ``connections`` streams (after a warm-up stream has come and gone)."""
    count, settle = params["connections"], params["settle_s"]
    pid = target["pid"]
    warm = Collector()
    warm_connections = await open_subscribers(
        target["host"], target["port"], target["stream_path"], target["stream_auth"], 20, warm
    )
    close_all(warm_connections)
    await asyncio.sleep(settle)
    before = rss_kib(pid)
    collector = Collector()
    connections, connect_s = await _connect(target, count, [collector], emit)
    emit("settle", 0, settle)
    samples = []
    for step in range(int(settle / 0.5)):
        await asyncio.sleep(0.5)
        samples.append(rss_kib(pid))
        emit("settle", (step + 1) * 0.5, settle)
    after = samples[-1] if samples else rss_kib(pid)
    opened = collector.connected
    result = {
        **_subscriber_summary(collector, count, connect_s),
        "rss_before_kib": before,
        "rss_after_kib": after,
        "kib_per_connection": round((after - before) / opened, 2) if opened else None,
    }
    close_all(connections)
    await asyncio.sleep(0.2)
    return result


WORKLOADS = {"fanout": fanout, "sustained": sustained, "publish": publish, "memory": memory}
