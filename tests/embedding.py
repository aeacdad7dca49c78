"""Host apps that embed the hub (``tests/data/hosts``), run as real
servers: ``uvicorn <kind>_host:app`` on a free loopback port, the hub
mounted at ``prefix`` ("" = the root)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from support import ServerProcess, free_port

HOSTS = Path(__file__).resolve().parent / "data" / "hosts"


@dataclass
class Host:
    """A host app on loopback, and where its hub is mounted."""

    server: ServerProcess
    kind: str
    prefix: str  # "" = the root
    report: Path

    @property
    def hub(self) -> str:
        """The hub's base URL (the host's origin + the prefix)."""
        return self.server.url + self.prefix


@contextlib.contextmanager
def running_host(tmp: Path, kind: str, prefix: str) -> Iterator[Host]:
    """``uvicorn <kind>_host:app`` in a subprocess, as a user runs a host."""
    port = free_port()
    report = tmp / "report.json"
    command = [
        *(sys.executable, "-m", "uvicorn", "--app-dir", str(HOSTS), f"{kind}_host:app"),
        *("--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"),
        *("--timeout-graceful-shutdown", "5"),  # streams never end on their own
    ]
    server = ServerProcess(
        f"sqlite:///{tmp / 'hub.db'}",
        port=port,
        command=command,
        ready_path=f"{prefix}/readyz",
        env={"HOST_HUB_PREFIX": prefix, "HOST_REPORT": str(report)},
    )
    try:
        server.start(tmp / "host.log")
        yield Host(server, kind, prefix, report)
    finally:
        server.stop()
