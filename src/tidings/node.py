"""The Tidings node: every component of one process, wired, started and
stopped together. Embed it (``Tidings(settings)``, ``await hub.publish``) or
serve it over HTTP (:func:`tidings.http.app.create_app`).

A tenant's lifecycle is checked in one place, :meth:`Tidings.admit`, by
every path that writes in its name: appending events (publish, batches,
entity transitions, in-process publishes: inbound mappings, rules'
``publish_event``), creating or reading notifications, running a job (the
worker asks before each attempt) and replaying a tenant's range. Only a
tenant's own transition is exempt: it is the lifecycle.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tidings.automation import builtin
from tidings.automation.actions import ActionHost, ActionRegistry
from tidings.automation.email import DEFAULT_SENDER, SmtpSettings
from tidings.automation.plugins import load_plugins
from tidings.automation.rulebook import RuleBook
from tidings.automation.worker import CLAIM_TASK, FLUSH_TASK, Worker, WorkerSettings
from tidings.catalog import load_catalog
from tidings.catalog.tenants import TenantCatalogs
from tidings.config import Settings
from tidings.core.catalog import Catalog
from tidings.core.statemachine import Transition
from tidings.errors import Conflict, InvalidInput, TidingsError
from tidings.hub.feed import Feed
from tidings.hub.hub import Hub
from tidings.hub.stream import KEY_REVOKED, TENANT_SUSPENDED, USER_DELETED, BaseStream
from tidings.periodic import Periodic
from tidings.services.auth import (
    CLOSED_STATES,
    OPERATOR,
    PUBLISHING_STATES,
    Authenticator,
    Principal,
)
from tidings.services.catalog import CatalogTypes
from tidings.services.health import NODE_KIND, Counters, Health
from tidings.services.history import History
from tidings.services.identity import Identity
from tidings.services.inbound import Inbound
from tidings.services.ingest import Ingest
from tidings.services.jobs import Jobs
from tidings.services.lifecycle import Lifecycle
from tidings.services.notifications import Notifications
from tidings.services.ratelimit import PublishLimiter
from tidings.services.retention import Retention
from tidings.services.rules import Rules
from tidings.services.sessions import AdminSessions
from tidings.services.tenant_overview import TenantOverview
from tidings.services.tickets import Tickets
from tidings.store.base import AppendOutcome, AppendResult, NewEvent, PoolUsage, TenantRecord
from tidings.store.group_commit import GroupCommit
from tidings.store.migrate import upgrade
from tidings.store.signals import LocalSignals, PostgresSignals, Signals
from tidings.store.sql import SQLStore
from tidings.supervision import Supervisor

log = logging.getLogger("tidings")
STOP_TIMEOUT_S = 10.0  # the worker's grace (5 s) and the appender's drain (5 s) fit in it


class Tidings:
    def __init__(self, settings: Settings, *, catalog: Catalog | None = None) -> None:
        self.settings = settings
        # Every background loop of this node runs under it (see supervision.py).
        self.supervisor = Supervisor(restart_s=settings.task_restart_s)
        if catalog is None:  # the shipped packs and any configured ones; broken -> CatalogError
            catalog = load_catalog(Path(d) for d in settings.catalog_dirs)
        self.catalog = catalog
        # Names this process in notifications, so it can ignore its own.
        self.node_id = secrets.token_hex(8)
        self.store = SQLStore(
            settings.database_url,
            pool_size=settings.pool_size,
            sqlite_synchronous=settings.sqlite_synchronous,
            origin=self.node_id,
            max_event_depth=settings.max_event_depth,
        )
        self.catalogs = TenantCatalogs(self.catalog, self.store, refresh_s=settings.cache_ttl_s)
        self.hub = Hub(
            sensitive=self.catalogs.sensitive,
            heartbeat_s=settings.heartbeat_s,
            retry_ms=settings.retry_ms,
        )
        self.feed = Feed(self.store, self.hub, poll_s=settings.poll_s)
        self.group_commit = GroupCommit(
            self.store,
            self.feed,
            on_jobs=self._jobs_enqueued,
            count_tenants=settings.metrics_per_tenant,
        )
        self.ingest = Ingest(
            self.catalogs.for_tenant,
            max_event_bytes=settings.max_event_bytes,
            validate_payloads=settings.validate_payloads,
            max_depth=settings.max_event_depth,
        )
        self.auth = Authenticator(
            self.store,
            admin_key=settings.admin_key,
            jwt_secret=settings.jwt_secret,
            jwks_url=settings.jwks_url,
            jwt_audience=settings.jwt_audience,
            cache_ttl=settings.cache_ttl_s,
        )
        self.limiter = PublishLimiter(settings.publish_rate)
        self._key_use = Periodic(
            settings.cache_ttl_s, self.auth.flush_used, log, "recording API key use"
        )
        self.retention = Retention(
            self.store,
            default_days=settings.retention_days,
            interval_s=settings.retention_interval_s,
            jobs=self.store.jobs,
            job_days=settings.job_retention_days,
        )
        self.signals: Signals = (
            LocalSignals() if self.store.is_sqlite else PostgresSignals(self.store.url)
        )
        # The use cases transports call (tidings.services): each gets the ports it uses.
        self.identity = Identity(
            self.store, control=self.control, publish_rate=settings.publish_rate
        )
        self.lifecycle = Lifecycle(
            self.store,
            prepare=self.ingest.prepare,
            committed=self._committed,
            admit=self.admit,
            take=self.limiter.take,
            control=self.control,
        )
        self.tenant_overview = TenantOverview(self.store, self.identity)
        self.tickets = Tickets(self.store, self.auth.user_principal, ttl_s=settings.ticket_ttl_s)
        self.sessions = AdminSessions(
            self.auth,
            secret=settings.session_secret,
            admin_key=settings.admin_key,
            ttl_s=settings.admin_session_ttl_s,
        )
        self.history = History(
            self.store, self.hub, self.catalogs.sensitive, max_replay=settings.max_replay
        )
        self.notifications = Notifications(self.store, admit=self.admit, publish=self.publish)
        self.inbound = Inbound(
            self.store, transition_tenant=self.transition_tenant, publish=self.publish
        )
        # Checked at start: a bad SMTP URL is a configuration error, not a
        # failure of every send_email job later.
        self.smtp = (
            SmtpSettings.from_url(settings.smtp_url, default_sender=DEFAULT_SENDER)
            if settings.smtp_url
            else None
        )
        self.actions = ActionRegistry()
        builtin.install(self.actions)
        self.rulebook = RuleBook(
            self.store,
            self.actions,
            catalogs=self.catalogs.for_tenant,
            control=self.control,
            publish=self.publish,
            notifier=self.notifications,
            allow_private_webhooks=settings.allow_private_webhooks,
            refresh_s=settings.cache_ttl_s,
        )
        self.worker: Worker | None = None
        if settings.run_jobs:
            host = ActionHost(
                publish=self.publish,
                notifications=self.notifications,
                supervisor=self.supervisor,
                smtp=self.smtp,
                allow_private_webhooks=settings.allow_private_webhooks,
                jobs=self.actions.jobs,
            )
            self.worker = Worker(
                self.store,
                self.rulebook,
                self.actions,
                host,
                admit=self.admit,
                worker_id=f"worker-{self.node_id}",
                settings=WorkerSettings(
                    concurrency=settings.job_concurrency,
                    lease_s=settings.job_lease_s,
                    poll_s=settings.job_poll_s,
                    max_event_depth=settings.max_event_depth,
                    disable_after_failures=settings.webhook_disable_after_failures,
                    disable_after_s=settings.webhook_disable_after_s,
                ),
            )
        self.jobs = Jobs(self.store, self.rulebook, admit=self.admit, wake_worker=self.wake_worker)
        self.rules = Rules(self.rulebook, self.actions, history=self.history)
        self.catalog_types = CatalogTypes(
            self.store,
            self.catalog,
            for_tenant=self.catalogs.for_tenant,
            refresh=self.catalogs.refresh,
        )
        self.health = Health(
            self.store,
            node_id=self.node_id,
            counters=self._health_counters,
            latencies=self._drain_latencies,
            announce=self.control,
            dead_tasks=self.supervisor.dead,
            worker_tasks=(CLAIM_TASK, FLUSH_TASK) if self.worker is not None else (),
            smtp=(self.smtp.host, self.smtp.port) if self.smtp is not None else None,
            connections_of=self.hub.connections_of,
        )
        self.started = False
        self._background: set[asyncio.Task[None]] = set()
        # Last: a plugin's register(tidings) sees a node whose rule book and
        # worker exist (and may only add actions and jobs to it).
        load_plugins(self, settings.plugins)

    def sensitive_for(self, tenant_id: str, event_type: str) -> Any:
        """The sensitive fields of ``event_type`` as tenant ``tenant_id`` defines it."""
        return self.catalogs.sensitive(tenant_id, event_type)

    async def start(self) -> None:
        if self.settings.auto_migrate:
            await upgrade(self.settings.database_url)
        await self.store.open()
        await self.rulebook.load()  # before the first append: its jobs are enqueued with it
        self.rulebook.start(self.supervisor)
        await self.catalogs.start(self.supervisor)
        await self.feed.start(self.supervisor)
        await self.signals.start(self._on_log, self._on_control)
        self.retention.start(self.supervisor)
        self._key_use.start(self.supervisor)
        self.group_commit.start(self.supervisor)
        self.hub.start(self.supervisor)
        if self.worker is not None:
            self.worker.start()
        self.health.start(self.supervisor)
        self.started = True
        log.info("tidings started", extra={"position": self.hub.position})

    async def stop(self) -> None:
        """Stop every component, within ``STOP_TIMEOUT_S`` whatever hangs
        (a dead database, a job that ignores cancellation)."""
        if not self.started:
            return
        self.started = False
        try:
            async with asyncio.timeout(STOP_TIMEOUT_S):
                await self._stop_components()
        except TimeoutError:
            log.error("shutdown did not finish within %.0fs; exiting anyway", STOP_TIMEOUT_S)

    async def _stop_components(self) -> None:
        await self.health.stop()
        if self.worker is not None:
            await self.worker.stop()
        await self.rulebook.stop()
        await self.group_commit.stop()
        await self.hub.stop()
        await self.retention.stop()
        await self._key_use.stop()
        with contextlib.suppress(TidingsError):
            await self.auth.flush_used()
        await self.signals.stop()
        await self.feed.stop()
        await self.catalogs.stop()
        await self.supervisor.stop_all()
        await self.store.close()

    # -- cross-process signals --------------------------------------------

    def register_action(self, name: str, run: Any = None, **options: Any) -> Any:
        """Add a host action type (see :meth:`ActionRegistry.register`)."""
        return self.actions.register(name, run, **options)

    def register_job(self, name: str, run: Any = None) -> Any:
        """Add a named job for ``run_job`` rules."""
        return self.actions.register_job(name, run)

    def pool_usage(self) -> list[PoolUsage]:
        """The database connection pools' use now (for /metrics; no query)."""
        return self.store.pool_usage()

    def _drain_latencies(self) -> list[float]:
        """The hub's delivery latencies so far, leaving its list empty (the
        health sampler's share; /metrics reads the hub's histogram)."""
        taken, self.hub.stats.latencies = self.hub.stats.latencies, []
        return taken

    def _health_counters(self) -> Counters:
        """This process's in-memory counters, for the health sampler."""
        return Counters(
            connections=len(self.hub),
            published=self.group_commit.appended,
            delivered=self.hub.stats.delivered,
            position=self.hub.position,
        )

    def wake_worker(self) -> None:
        """Jobs may be due now: tell this process's worker (if it runs one)."""
        if self.worker is not None:
            self.worker.wake()

    def _jobs_enqueued(self, outcome: AppendOutcome) -> None:
        if outcome.jobs and self.worker is not None:
            self.worker.wake()

    def _on_log(self, head: int, origin: str) -> None:
        if self.worker is not None:
            self.worker.wake()  # another process's commit may have enqueued jobs
        if origin == self.node_id:
            return  # our own commit: the appender hands it to the feed directly
        if head < 0 or head > self.hub.position:
            self.feed.wake()

    async def control(self, kind: str, **fields: Any) -> None:
        """Identity data changed (``user_changed``, ``user_deleted``,
        ``roles_changed``, ``tenant_changed``, ``api_key_revoked``): apply it
        here before returning, then tell the other processes."""
        message = {"kind": kind, "origin": self.node_id, **fields}
        await self._apply_control(message)
        await self.signals.send_control(message)

    def _on_control(self, message: dict[str, Any]) -> None:
        if message.get("origin") == self.node_id:
            return  # applied when sent
        task = asyncio.get_running_loop().create_task(self._apply_control(message))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _apply_control(self, message: dict[str, Any]) -> None:
        kind, tenant_id = message.get("kind"), message.get("tenant")
        if kind == "user_deleted":
            self.hub.close_user(str(tenant_id), str(message.get("user")), USER_DELETED)
        elif kind in ("user_changed", "roles_changed"):
            self.auth.roles.drop()
            await self.refresh_streams(
                tenant_id, user_id=message.get("user"), role=message.get("role")
            )
        elif kind == "api_key_revoked":
            self.auth.forget_key(str(message.get("key")))
            self.hub.close_key(str(message.get("key")), KEY_REVOKED)
        elif kind == NODE_KIND:
            self.health.heard(message)
        elif kind == "rules_changed":
            await self.rulebook.load()
        elif kind == "tenant_changed":
            self.auth.tenants.drop(tenant_id)
            if message.get("state") in CLOSED_STATES:
                self.hub.close_tenant(str(tenant_id), TENANT_SUSPENDED)

    async def refresh_streams(
        self, tenant_id: str | None, *, user_id: str | None = None, role: str | None = None
    ) -> int:
        """Re-derive the audiences of affected open streams from the store."""
        by_user: dict[tuple[str, str], list[BaseStream]] = {}
        for stream in self.hub.index:
            key = stream.user_key
            if key is None or (tenant_id is not None and key[0] != tenant_id):
                continue
            if user_id is None or key[1] == user_id:
                by_user.setdefault(key, []).append(stream)
        refreshed = 0
        for (tenant, uid), streams in by_user.items():
            user = await self.store.get_user(tenant, uid)
            if user is None or (role is not None and user.system_role != role):
                continue
            viewer = await self.auth.viewer_for(user)
            for stream in streams:
                if not stream.closed:
                    self.hub.update_viewer(stream, viewer)
                    refreshed += 1
        return refreshed

    async def transition_tenant(
        self,
        tenant_id: str,
        to: str,
        *,
        reason: str | None = None,
        triggered_by: str | None = None,
        trigger_source: str = "user",
    ) -> tuple[Transition, AppendResult | None]:
        """Move a tenant through its lifecycle as the node (embedders,
        inbound mappings): :meth:`tidings.services.lifecycle.Lifecycle.move_tenant`."""
        return await self.lifecycle.move_tenant(
            tenant_id, to, reason=reason, triggered_by=triggered_by, trigger_source=trigger_source
        )

    def _committed(self, outcome: AppendOutcome) -> None:
        """Events appended outside the appender: to the feed, jobs to the worker."""
        self.feed.committed(outcome.stored, time.time())
        self._jobs_enqueued(outcome)

    async def publish(
        self,
        event: dict[str, Any],
        *,
        principal: Principal | None = None,
        idempotency_key: str | None = None,
    ) -> AppendResult:
        """Publish one event in-process (as the operator unless a principal
        is given). Returns once the event is durable."""
        who = principal or OPERATOR
        prepared = self.ingest.prepare(event, who, idempotency_key=idempotency_key)
        (result,) = await self.append([prepared])
        return result

    async def publish_many(
        self, events: Sequence[dict[str, Any]], *, principal: Principal | None = None
    ) -> list[AppendResult]:
        who = principal or OPERATOR
        return await self.append(self.ingest.prepare_batch(events, who))

    async def append(
        self, prepared: Sequence[NewEvent], *, pointer: str = "/events/"
    ) -> list[AppendResult]:
        """Append validated events once their tenants are known to accept
        them; returns when they are durable."""
        checked: set[str] = set()
        for i, new in enumerate(prepared):
            tenant_id = new.event.tenant_id
            if tenant_id in checked:
                continue
            where = f"{pointer}{i}/tenantId" if len(prepared) > 1 else "/tenantId"
            await self.admit(tenant_id, field=where)
            checked.add(tenant_id)
        return await self.group_commit.append(prepared)

    async def admit(self, tenant_id: str, *, field: str = "/tenantId") -> TenantRecord:
        """The tenant, if it accepts writes now (events, notifications,
        jobs): an unknown tenant is a 422, a tenant outside
        ``PUBLISHING_STATES`` (READ_ONLY, SUSPENDED, DEPROVISIONING,
        ARCHIVED) a 409 carrying its ``state``. The one lifecycle check."""
        tenant = await self.auth.tenant(tenant_id)
        if tenant is None:
            raise InvalidInput(f"unknown tenant {tenant_id!r}", field=field)
        if tenant.state not in PUBLISHING_STATES:
            raise Conflict(
                f"tenant {tenant_id!r} is {tenant.state}: it accepts no writes",
                field=field,
                state=tenant.state,
            )
        return tenant
