"""A host application's plugin, as a server loads it (TIDINGS_PLUGINS):
one module action and one named job, both writing to a file the test reads."""

from __future__ import annotations

import json
import os
from typing import Any

from tidings.automation.actions import ActionContext, PermanentActionError


def _record(kind: str, ctx: ActionContext, values: dict[str, Any]) -> None:
    line = {"kind": kind, "job": ctx.job.id, "event": ctx.event["id"], **values}
    with open(os.environ["TEST_PLUGIN_LOG"], "a") as out:
        out.write(json.dumps(line) + "\n")


def register(tidings: Any) -> None:
    @tidings.register_action("update_status", description="Set a host entity's status")
    async def update_status(ctx: ActionContext, config: dict[str, Any]) -> str:
        if config.get("status") == "impossible":
            raise PermanentActionError("no such status")
        _record("update_status", ctx, config)
        return f"status set to {config.get('status')}"

    @tidings.register_job("recount")
    def recount(ctx: ActionContext, args: dict[str, Any]) -> None:
        _record("recount", ctx, args)
