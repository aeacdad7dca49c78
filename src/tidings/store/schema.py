"""The relational schema, shared by SQLite and PostgreSQL (SQLAlchemy Core).

Alembic migrations in ``migrations/`` create exactly these tables; a test
compares the migrated schema with this metadata. An object whose ``info``
names a ``dialect`` exists on that backend only (see :data:`ONLY_ON`).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

ONLY_ON = "dialect"  # info key: the one backend that has this table or index
# Pages of new SQLite databases: a group commit writes each dirty page to
# the WAL with its own write calls, so 16 KiB pages mean a quarter of the
# calls of SQLite's 4 KiB default (measured: ~7% more batch publishes).
SQLITE_PAGE_SIZE = 16384
GLOBAL_SCOPE = "*"  # tenant_id of global rows in tables keyed by tenant

tenants = Table(
    "tenants",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("state", String(32), nullable=False),
    Column("settings", Text, nullable=False, default="{}"),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("user_id", String(200), primary_key=True),
    Column("system_role", String(100), nullable=False),
    Column("grants", Text, nullable=False),
    Column("revokes", Text, nullable=False),
    Column("resources", Text, nullable=False),
    Column("platform", Boolean, nullable=False),
    Column("platform_tenants", Text, nullable=False),
    Column("deleted_at", Float, nullable=True),
    Column("updated_at", Float, nullable=False),
)

roles = Table(
    "roles",
    metadata,
    Column("tenant_id", String(64), primary_key=True),  # GLOBAL_SCOPE for defaults
    Column("role", String(100), primary_key=True),
    Column("permissions", Text, nullable=False),
    Column("updated_at", Float, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("scopes", Text, nullable=False),
    Column("tenant_id", String(64), nullable=True),
    Column("created_at", Float, nullable=False),
    Column("revoked_at", Float, nullable=True),
    Column("expires_at", Float, nullable=True),  # 0010
    Column("last_used_at", Float, nullable=True),  # 0010
    Column("publish_rate", Float, nullable=True),  # 0010: None = TIDINGS_PUBLISH_RATE
)

stream_tickets = Table(
    "stream_tickets",
    metadata,
    Column("ticket_hash", String(64), primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("user_id", String(200), nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("session_expires_at", Float, nullable=True),  # the minting token's exp
    Column("used_at", Float, nullable=True),
)

events = Table(
    "events",
    metadata,
    # Assigned in commit order by the appender (see ARCHITECTURE.md).
    Column(
        "position",
        BigInteger().with_variant(Integer, "sqlite"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("id", String(128), nullable=False),
    Column("tenant_id", String(64), nullable=False),
    Column("type", String(128), nullable=False),
    Column("entity_type", String(256), nullable=True),
    Column("entity_id", String(256), nullable=True),
    Column("created_at", Float, nullable=False),
    Column("idempotency_key", String(256), nullable=True),
    Column("body", Text, nullable=False),  # the wire envelope without position
    UniqueConstraint("tenant_id", "id", name="uq_events_tenant_id"),
    Index("ix_events_tenant_time", "tenant_id", "created_at"),
    Index("ix_events_type", "type", "position"),
    # PostgreSQL indexes entities in the append; SQLite in bulk, lazily
    # (``entity_index``, below).
    Index(
        "ix_events_entity", "tenant_id", "entity_type", "entity_id", info={ONLY_ON: "postgresql"}
    ),
    Index(
        "ix_events_idempotency",
        "tenant_id",
        "idempotency_key",
        unique=True,
        sqlite_where=Column("idempotency_key").isnot(None),
        postgresql_where=Column("idempotency_key").isnot(None),
    ),
)

# SQLite only: the entity index, filled from the log in bulk by the appender
# (store/entity_index.py) instead of row by row in each append: an index
# keyed by entity dirties one page per distinct entity per commit, which
# was most of a batch append's cost. ``log_marks`` says how far it is built;
# queries read the rows above that mark from the log itself.
entity_index = Table(
    "entity_index",
    metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("entity_type", String(256), primary_key=True),  # '' for none
    Column("entity_id", String(256), primary_key=True),  # '' for none
    Column("position", Integer, primary_key=True),
    sqlite_with_rowid=False,
    info={ONLY_ON: "sqlite"},
)

log_marks = Table(
    "log_marks",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("upto", Integer, nullable=False),  # log positions <= upto are done
    info={ONLY_ON: "sqlite"},
)

catalog_types = Table(
    "catalog_types",
    metadata,
    # Tenant-defined event types (POST /api/admin/catalog/...): the entry in
    # catalog-pack form (JSON), every version included.
    Column("tenant_id", String(64), primary_key=True),
    Column("name", String(128), primary_key=True),
    Column("spec", Text, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

log_horizons = Table(
    "log_horizons",
    metadata,
    # Retention deleted this tenant's events up to this position: a stream
    # resuming from below it gets a reset instead of a silent gap.
    Column("tenant_id", String(64), primary_key=True),
    Column("pruned_through", BigInteger, nullable=False),
    Column("pruned_at", Float, nullable=False),
)

notifications = Table(
    "notifications",
    metadata,
    # In-app notifications (seed 004). Ids are ntf_<ULID>: time-ordered, so
    # they are also the paging cursor (newest first).
    Column("id", String(40), primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("user_id", String(200), nullable=False),
    Column("type", String(128), nullable=False),
    Column("title", String(500), nullable=False),
    Column("body", Text, nullable=False),
    Column("link", String(2000), nullable=True),
    Column("source_event_id", String(128), nullable=True),
    Column("created_at", Float, nullable=False),
    Column("read_at", Float, nullable=True),
    Index("ix_notifications_user", "tenant_id", "user_id", "id"),
)

lifecycle_log = Table(
    "lifecycle_log",
    metadata,
    # Every state change of an entity (seed 001's tenant_lifecycle_log,
    # generalised): from, to, why, who, from where, and the event it emitted.
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("entity_type", String(64), nullable=False),
    Column("tenant_id", String(64), nullable=False),
    Column("entity_id", String(256), nullable=False),
    Column("from_state", String(64), nullable=True),
    Column("to_state", String(64), nullable=False),
    Column("reason", Text, nullable=True),
    Column("triggered_by", String(200), nullable=True),
    Column("trigger_source", String(32), nullable=False),
    Column("event_id", String(128), nullable=True),
    Column("created_at", Float, nullable=False),
    Index("ix_lifecycle_entity", "entity_type", "tenant_id", "entity_id", "id"),
)

integrations = Table(
    "integrations",
    metadata,
    # Inbound webhooks from external systems (seed 001's edge/integration
    # hooks): per-integration secret, signature scheme and event mappings.
    Column("name", String(100), primary_key=True),
    Column("secret", String(500), nullable=False),
    Column("scheme", String(32), nullable=False),
    Column("mappings", Text, nullable=False),
    Column("updated_at", Float, nullable=False),
)

inbound_log = Table(
    "inbound_log",
    metadata,
    # Every inbound call, accepted or rejected, and why.
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("integration", String(100), nullable=False),
    Column("webhook_id", String(200), nullable=True),
    Column("accepted", Boolean, nullable=False),
    Column("outcome", Text, nullable=False),
    Column("external_type", String(128), nullable=True),
    Column("tenant_id", String(64), nullable=True),
    Column("created_at", Float, nullable=False),
    Index("ix_inbound_log_webhook", "integration", "webhook_id"),
)

state_machines = Table(
    "state_machines",
    metadata,
    # Machines host applications declared (JSON spec), by entity type.
    Column("entity_type", String(64), primary_key=True),
    Column("spec", Text, nullable=False),
    Column("updated_at", Float, nullable=False),
)

entity_states = Table(
    "entity_states",
    metadata,
    # The current state of entities driven by a state machine (absent: the
    # machine's initial state).
    Column("entity_type", String(64), primary_key=True),
    Column("tenant_id", String(64), primary_key=True),
    Column("entity_id", String(256), primary_key=True),
    Column("state", String(64), nullable=False),
    Column("updated_at", Float, nullable=False),
)

rules = Table(
    "rules",
    metadata,
    # Automation rules (seed 001's system_event_actions): trigger -> action.
    # Deleted rules stay (deleted_at) so their jobs remain explainable.
    Column("id", String(40), primary_key=True),
    Column("tenant_id", String(64), nullable=True),  # NULL: a global rule
    Column("name", String(200), nullable=False),
    Column("spec", Text, nullable=False),  # trigger, action, retry (JSON)
    Column("priority", Integer, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("disabled_reason", Text, nullable=True),
    Column("author", String(200), nullable=True),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("deleted_at", Float, nullable=True),
)

outbox = Table(
    "outbox",
    metadata,
    # The transactional outbox: one row per appended event that matched
    # rules, written in the event's own transaction (so publishing pays one
    # small row, not one per rule). Workers turn each into its jobs.
    Column("event_position", BigInteger, primary_key=True, autoincrement=False),
    Column("tenant_id", String(64), nullable=False),
    Column("event_id", String(128), nullable=False),
    Column("event_type", String(128), nullable=False),
    Column("rule_ids", Text, nullable=False),  # space-separated, priority order
    Column("created_at", Float, nullable=False),
    Column("request_id", String(128), nullable=True),  # the publish request's X-Request-ID
)

jobs = Table(
    "jobs",
    metadata,
    # One execution of one rule for one event: made from the outbox (or by
    # replay), claimed by workers under a lease.
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("tenant_id", String(64), nullable=False),
    Column("rule_id", String(40), nullable=False),
    Column("event_position", BigInteger, nullable=False),
    Column("event_id", String(128), nullable=False),
    Column("event_type", String(128), nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("run_at", Float, nullable=False),
    Column("lease_until", Float, nullable=True),
    Column("worker", String(64), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("discard_reason", Text, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("request_id", String(128), nullable=True),  # the publish request's X-Request-ID
    # Idempotent per (event, rule); positions only grow, so inserts append.
    UniqueConstraint("event_position", "rule_id", name="uq_jobs_event_rule"),
    Index("ix_jobs_due", "status", "run_at"),
    Index("ix_jobs_tenant", "tenant_id", "id"),
)

job_attempts = Table(
    "job_attempts",
    metadata,
    # Every attempt of a job: when, how long, what came back.
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("job_id", BigInteger, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("started_at", Float, nullable=False),
    Column("duration_ms", Float, nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("detail", Text, nullable=False),
    Column("worker", String(64), nullable=True),
    Index("ix_job_attempts_job", "job_id", "attempt"),
)
