"""A plugin that kills one of the node's supervised background tasks on
purpose (the ``kill_task`` job, ``{"task": NAME}``): a real task of the
real server dies, as a bug in it would make it die."""

from __future__ import annotations

from typing import Any

from tidings.automation.actions import ActionContext, PermanentActionError


def register(tidings: Any) -> None:
    @tidings.register_job("kill_task")
    def kill_task(ctx: ActionContext, args: dict[str, Any]) -> None:
        task = ctx.tidings.supervisor.task(str(args["task"]))
        if task is None or task.done():
            raise PermanentActionError(f"no running task {args['task']!r}")
        task.cancel()
