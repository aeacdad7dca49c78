"""Action types: what a rule can do, and the plugin API for host actions.

Each :class:`ActionType` has a ``check`` (run when a rule is saved: refuse
bad configuration with the offending field) and a ``run`` (one attempt,
returning an :class:`ActionOutcome`). Templates in a configuration are
rendered against the event before ``run`` sees it (and in dry runs).

Host applications add their own (``update_status``, ``create_entity``,
``enroll_user`` ...) with :meth:`ActionRegistry.register`, and named jobs
for ``run_job`` with :meth:`ActionRegistry.register_job`; see
``tidings.automation.plugins`` for how a server finds them.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tidings.automation import templates
from tidings.automation.outcome import ActionOutcome
from tidings.errors import InvalidInput

if TYPE_CHECKING:
    import httpx

    from tidings.automation.email import SmtpSettings
    from tidings.automation.rules import Rule
    from tidings.core.catalog import Catalog
    from tidings.services.ports import Notifier, Publisher
    from tidings.store.base import JobRecord, TenantRecord
    from tidings.supervision import Supervisor

NAME = r"^[a-z][a-z0-9_.\-]{0,63}$"


class PermanentActionError(Exception):
    """Raised by an action when retrying cannot help: the job goes dead."""


@dataclass(frozen=True, slots=True)
class CheckContext:
    """What a configuration check may consult when a rule is saved or
    dry-run: nothing it could change."""

    tenant_id: str | None  # the rule's scope (None: global)
    catalog: Catalog  # the event types of that scope (the shipped ones for a global rule)
    jobs: Mapping[str, Run]  # run_job's named jobs, as registered
    allow_private_webhooks: bool  # the SSRF policy of webhook URLs


@dataclass(frozen=True, slots=True)
class ActionHost:
    """What the node lends every action, the same for every attempt: the
    only ways an action (built-in or a plugin's) reaches the rest of
    Tidings. Actions may publish follow-up events (as the operator, with an
    idempotency key so a retried job publishes once), write in-app
    notifications, send e-mail through ``smtp`` and look at the node's
    supervised tasks; they never see the store or the settings."""

    publish: Publisher  # returns once the event is durable; tenant lifecycle checked
    notifications: Notifier  # members of an audience; create one notification
    supervisor: Supervisor  # the node's background tasks (their health)
    smtp: SmtpSettings | None  # None: no SMTP configured
    allow_private_webhooks: bool  # the SSRF policy every webhook request is checked against
    jobs: Mapping[str, Run]  # run_job's named jobs, as registered (read only)


@dataclass(slots=True)
class ActionContext:
    """What one attempt of an action gets. ``event`` is the stored envelope
    (with its position), ``tenant`` the event's tenant as admitted for this
    attempt (it accepts writes), ``variables`` what templates saw when the
    configuration was rendered. ``http`` is the worker's shared client
    whose connections are checked against the SSRF policy; actions must
    not close it."""

    host: ActionHost
    rule: Rule
    job: JobRecord
    event: dict[str, Any]  # the envelope, with its position
    tenant: TenantRecord
    http: httpx.AsyncClient  # webhook_client: connections checked against the SSRF policy
    variables: dict[str, Any] = field(default_factory=dict)  # what templates see

    @property
    def tenant_id(self) -> str:
        return str(self.event["tenantId"])

    @property
    def tidings(self) -> ActionHost:
        """The host, under the name plugins used when the context carried
        the whole node: ``ctx.tidings.publish``, ``.notifications``,
        ``.supervisor`` and ``.smtp`` keep working."""
        return self.host


Check = Callable[[Mapping[str, Any], str, CheckContext], None]
Run = Callable[[ActionContext, dict[str, Any]], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class ActionType:
    name: str
    run: Run
    check: Check | None = None
    description: str = ""
    secret_keys: tuple[str, ...] = ()  # never rendered, never shown back
    builtin: bool = False


class ActionRegistry:
    def __init__(self) -> None:
        self._actions: dict[str, ActionType] = {}
        self.jobs: dict[str, Run] = {}  # run_job's named jobs

    def add(self, action: ActionType) -> None:
        self._actions[action.name] = action

    def register(
        self,
        name: str,
        run: Run | None = None,
        *,
        check: Check | None = None,
        description: str = "",
    ) -> Any:
        """Register a host action ``name``: ``run(ctx, config)`` is awaited
        (or called) with the rendered config; it returns nothing or an
        :class:`ActionOutcome`, raises to fail the attempt (retried), or
        raises :class:`PermanentActionError` to fail the job for good.
        Usable as a decorator."""

        def add(fn: Run) -> Run:
            _check_name(name)
            if name in self._actions and self._actions[name].builtin:
                raise ValueError(f"{name!r} is a built-in action")
            self._actions[name] = ActionType(name, _awaitable(fn), check, description)
            return fn

        return add(run) if run is not None else add

    def register_job(self, name: str, run: Run | None = None) -> Any:
        """Register a named job for the ``run_job`` action (``{"name",
        "args"}``): ``run(ctx, args)``. Usable as a decorator."""

        def add(fn: Run) -> Run:
            _check_name(name)
            self.jobs[name] = _awaitable(fn)
            return fn

        return add(run) if run is not None else add

    def get(self, name: str) -> ActionType | None:
        return self._actions.get(name)

    def names(self) -> list[str]:
        return sorted(self._actions)

    def describe(self) -> list[dict[str, Any]]:
        return [
            {"type": a.name, "builtin": a.builtin, "description": a.description}
            for a in sorted(self._actions.values(), key=lambda a: a.name)
        ]

    def check(self, action_type: str, config: Mapping[str, Any], ctx: CheckContext) -> None:
        action = self._actions.get(action_type)
        if action is None:
            known = ", ".join(self.names())
            raise InvalidInput(
                f"unknown action type {action_type!r} (known: {known})", field="/action/type"
            )
        templates.check_value(
            {k: v for k, v in config.items() if k not in action.secret_keys}, "/action/config"
        )
        if action.check is not None:
            action.check(config, "/action/config", ctx)

    def render(
        self, action_type: str, config: Mapping[str, Any], variables: Mapping[str, Any]
    ) -> dict[str, Any]:
        """The configuration with every template rendered (secrets untouched),
        under one template budget for the whole configuration."""
        action = self._actions.get(action_type)
        secret = action.secret_keys if action is not None else ()
        plain = {k: v for k, v in config.items() if k not in secret}
        rendered: dict[str, Any] = templates.render_value(plain, variables)
        return {k: (v if k in secret else rendered[k]) for k, v in config.items()}

    def shown(self, action_type: str, config: Mapping[str, Any]) -> dict[str, Any]:
        """The configuration as the API shows it: secrets masked."""
        action = self._actions.get(action_type)
        secret = action.secret_keys if action is not None else ()
        return {k: (mask(v) if k in secret else v) for k, v in config.items()}

    async def run(
        self, action_type: str, ctx: ActionContext, config: dict[str, Any]
    ) -> ActionOutcome:
        action = self._actions.get(action_type)
        if action is None:
            return ActionOutcome.failed(
                f"action type {action_type!r} is not registered in this process", permanent=True
            )
        try:
            result = await action.run(ctx, config)
        except PermanentActionError as exc:
            return ActionOutcome.failed(one_line(exc), permanent=True)
        except templates.TemplateError as exc:
            return ActionOutcome.failed(f"template: {one_line(exc)}", permanent=True)
        except Exception as exc:  # a host action failed: record it and retry
            return ActionOutcome.failed(f"{type(exc).__name__}: {one_line(exc)}")
        if isinstance(result, ActionOutcome):
            return result
        return ActionOutcome(True, "done" if result is None else one_line(result)[:200])


def mask(value: Any) -> Any:
    """A secret as it may be shown: its first characters only. Lists and
    dicts (e.g. ``previousSecrets``: ``[{"secret", "expiresAt"}]``) are
    masked item by item; numbers and flags stay readable."""
    if isinstance(value, str) and value:
        return value[:6] + "…" if len(value) > 12 else "…"
    if isinstance(value, list):
        return [mask(v) for v in value]
    if isinstance(value, dict):
        return {k: mask(v) for k, v in value.items()}
    return value


def one_line(value: object) -> str:
    return " ".join(str(value).split())[:500]


def _check_name(name: str) -> None:
    if not re.fullmatch(NAME, name):
        raise ValueError(f"invalid action name {name!r}: lower case, digits, . _ -")


def _awaitable(fn: Callable[..., Any]) -> Run:
    if inspect.iscoroutinefunction(fn):
        return fn

    async def call(ctx: ActionContext, config: dict[str, Any]) -> Any:
        return fn(ctx, config)

    return call


def require(
    config: Mapping[str, Any], key: str, where: str, kind: type | tuple[type, ...] = str
) -> Any:
    """A required configuration value of the given type."""
    value = config.get(key)
    if value is None or value == "":
        raise InvalidInput(f"{key!r} is required", field=f"{where}/{key}")
    if not isinstance(value, kind):
        raise InvalidInput(f"{key!r} has the wrong type", field=f"{where}/{key}")
    return value


def known_keys(config: Mapping[str, Any], where: str, allowed: set[str]) -> None:
    for key in config:
        if key not in allowed:
            raise InvalidInput(
                f"unknown setting {key!r} (allowed: {', '.join(sorted(allowed))})",
                field=f"{where}/{key}",
            )
