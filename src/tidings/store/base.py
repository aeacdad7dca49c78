"""The storage seam's names in one place: its records (``records.py``) and
its protocols (``ports.py``; :class:`Store` is every role together)."""

from __future__ import annotations

from tidings.store.ports import (
    CatalogTypes as CatalogTypes,
)
from tidings.store.ports import (
    Directory as Directory,
)
from tidings.store.ports import (
    EventLog as EventLog,
)
from tidings.store.ports import (
    Integrations as Integrations,
)
from tidings.store.ports import (
    JobQueue as JobQueue,
)
from tidings.store.ports import (
    Lifecycles as Lifecycles,
)
from tidings.store.ports import (
    NotificationStore as NotificationStore,
)
from tidings.store.ports import (
    Store as Store,
)
from tidings.store.records import (
    ApiKeyRecord as ApiKeyRecord,
)
from tidings.store.records import (
    AppendOutcome as AppendOutcome,
)
from tidings.store.records import (
    AppendResult as AppendResult,
)
from tidings.store.records import (
    AttemptRecord as AttemptRecord,
)
from tidings.store.records import (
    CatalogTypeRecord as CatalogTypeRecord,
)
from tidings.store.records import (
    Delivery as Delivery,
)
from tidings.store.records import (
    FailingRule as FailingRule,
)
from tidings.store.records import (
    JobFilter as JobFilter,
)
from tidings.store.records import (
    JobRecord as JobRecord,
)
from tidings.store.records import (
    JobResult as JobResult,
)
from tidings.store.records import (
    JobRow as JobRow,
)
from tidings.store.records import (
    LifecycleChange as LifecycleChange,
)
from tidings.store.records import (
    LogQuery as LogQuery,
)
from tidings.store.records import (
    NewEvent as NewEvent,
)
from tidings.store.records import (
    NotificationRecord as NotificationRecord,
)
from tidings.store.records import (
    PoolUsage as PoolUsage,
)
from tidings.store.records import (
    RuleRecord as RuleRecord,
)
from tidings.store.records import (
    TenantRecord as TenantRecord,
)
