"""What one attempt of an action came to, as the worker records it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ActionOutcome:
    ok: bool
    detail: str  # one line for the attempt log: "HTTP 200", "250 2.0.0 OK", an error
    status: int | None = None  # the HTTP status or SMTP reply code, when there was one
    retry_after: float | None = None  # seconds the remote asked us to wait (Retry-After)
    permanent: bool = False  # retrying cannot help: the job goes dead at once
    disable_rule: bool = False  # the endpoint is gone (HTTP 410): stop sending to it

    @classmethod
    def failed(cls, detail: str, **fields: object) -> ActionOutcome:
        return cls(False, detail, **fields)  # type: ignore[arg-type]
