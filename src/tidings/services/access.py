"""Who may do what: the one authorization table (DESIGN §4, issue 12).

Every route that takes a credential names its operation here and asks
:func:`authorize`; routes never test credential kinds themselves. Two
questions decide every call:

1. **Kind**: may this kind of credential perform the operation at all
   (:data:`OPERATIONS`)? The kinds (:func:`kind_of`) are the bootstrap admin
   key (``TIDINGS_ADMIN_KEY``), a global admin-scoped API key, a tenant-bound
   admin-scoped API key, a key without the admin scope (publish) and a
   user's token.
2. **Scope** (:func:`in_scope`): is the target inside the credential's
   reach? A credential bound to tenant T (a tenant-bound key, a user) reaches
   T only; a global credential reaches every tenant and the global objects
   (global rules, global role defaults, global API keys), written as a
   target of ``None``.

Invariants (pinned by ``tests/server/test_authorization.py``, one real HTTP request
per operation and credential kind):

* A tenant-bound credential never acts on another tenant nor on anything
  global: no platform users, no other tenant named in a body or a path, no
  global roles, rules, keys, integrations, state machines or tenant
  lifecycle moves. Objects of other tenants looked up by id answer 404
  (their existence is not revealed), named tenants 403.
* Listings show only what is in the caller's scope.
* Everything that decides what a platform user sees across tenants (the
  user record, its ``platformTenants``, the global role defaults it derives
  its permissions from) is written by global credentials only.
"""

from __future__ import annotations

from enum import StrEnum

from tidings.core.audience import UserRecord
from tidings.errors import Forbidden
from tidings.services.auth import Principal


class Kind(StrEnum):
    BOOTSTRAP = "bootstrap"  # TIDINGS_ADMIN_KEY
    GLOBAL_ADMIN = "global-admin"  # admin-scoped API key, no tenant
    TENANT_ADMIN = "tenant-admin"  # admin-scoped API key bound to a tenant
    PUBLISH = "publish"  # API key without the admin scope (bound or not)
    USER = "user"  # a user's JWT or stream ticket


PLATFORM = frozenset({Kind.BOOTSTRAP, Kind.GLOBAL_ADMIN})
ADMINS = PLATFORM | {Kind.TENANT_ADMIN}
SERVICES = ADMINS | {Kind.PUBLISH}
READERS = ADMINS | {Kind.USER}
USERS = frozenset({Kind.USER})
ANYONE = SERVICES | USERS

# operation -> the credential kinds that may perform it (then: in scope).
OPERATIONS: dict[str, frozenset[Kind]] = {
    # tenants: created, renamed, configured and moved by the platform only
    "tenants.write": PLATFORM,
    "tenants.transition": PLATFORM,
    "tenants.list": ADMINS,
    "tenants.read": ADMINS,
    "tenants.lifecycle": ADMINS,  # also GET /api/entities/tenant/{id}/timeline
    # users and roles of a tenant
    "users.read": ADMINS,
    "users.write": ADMINS,
    "users.platform": PLATFORM,  # create, change or delete a platform user
    "roles.write": ADMINS,  # a target of None (global defaults): platform only
    # API keys
    "api_keys.write": ADMINS,  # create and revoke; None (a global key): platform only
    "api_keys.list": ADMINS,
    # automation
    "actions.list": ADMINS,
    "rules.list": ADMINS,
    "rules.write": ADMINS,  # read, write, test, rotate; None (a global rule): platform
    "rule_packs.list": ADMINS,
    "jobs.list": ADMINS,
    "jobs.write": ADMINS,  # read, retry, discard
    "replay": ADMINS,
    # catalog
    "catalog.read": ANYONE,
    "catalog.write": ADMINS,  # a tenant's own types
    # platform-wide configuration
    "integrations": PLATFORM,
    "state_machines.write": PLATFORM,
    # the health page: a tenant-bound admin sees its tenant's figures only
    "health.read": ADMINS,
    # services
    "events.publish": SERVICES,
    "notifications.create": SERVICES,
    "entities.transition": SERVICES | USERS,
    "entities.timeline": READERS,
    "events.read": READERS,  # streams and history; admins name a tenant in scope
    "notifications.read": USERS,
    "events.ticket": USERS,  # single-use stream tickets for browsers
}

_NEEDS = {
    PLATFORM: "the bootstrap admin key or a global admin key",
    ADMINS: "an admin credential",
    SERVICES: "an API key or the admin key",
    READERS: "a user token or an admin credential",
    USERS: "a user token (Bearer JWT)",
}


def kind_of(principal: Principal) -> Kind:
    if principal.kind == "admin":
        return Kind.BOOTSTRAP
    if principal.kind == "user":
        return Kind.USER
    if "admin" in principal.scopes:
        return Kind.GLOBAL_ADMIN if principal.tenant_id is None else Kind.TENANT_ADMIN
    return Kind.PUBLISH


def in_scope(principal: Principal, tenant_id: str | None) -> bool:
    """True if ``tenant_id`` (None: a global object) is within the reach of
    the credential: global credentials reach everything, bound ones their
    own tenant only."""
    return principal.tenant_id is None or principal.tenant_id == tenant_id


def may(principal: Principal, operation: str, tenant_id: str | None) -> bool:
    return kind_of(principal) in OPERATIONS[operation] and in_scope(principal, tenant_id)


def authorize(
    principal: Principal,
    operation: str,
    tenant_id: str | None = None,
    *,
    scoped: bool = True,
    field: str | None = None,
) -> None:
    """Raise :class:`Forbidden` unless ``principal`` may perform
    ``operation`` on ``tenant_id`` (None: a global target). ``scoped=False``
    checks the kind only: listings filter by scope, and lookups by id check
    the found object's tenant with :func:`in_scope` (404 when out of scope)."""
    allowed = OPERATIONS[operation]
    if kind_of(principal) not in allowed:
        raise Forbidden(f"{operation} needs {_NEEDS.get(allowed, 'another credential')}")
    if scoped and not in_scope(principal, tenant_id):
        where = "global objects" if tenant_id is None else f"tenant {tenant_id!r}"
        raise Forbidden(
            f"this credential is bound to tenant {principal.tenant_id!r}: "
            f"{operation} on {where} needs a global credential",
            field=field,
        )


def authorized_user(principal: Principal, operation: str) -> UserRecord:
    """The caller's stored user, for an operation only users may perform
    (:data:`USERS`); :class:`Forbidden` for any other credential."""
    authorize(principal, operation, scoped=False)
    if principal.user is None:  # a user kind always carries its record
        raise Forbidden(f"{operation} needs {_NEEDS[USERS]}")
    return principal.user
