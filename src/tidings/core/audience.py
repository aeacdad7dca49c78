"""Who may see an event: the one deny-by-default predicate (seed 003).

Every path that hands an event to someone (live stream, replay, history,
notifications) asks :func:`can_see`. The live hub uses an index for speed,
but it indexes exactly the keys this module derives (:meth:`Viewer.keys`,
:func:`event_keys`), and a property test pins the two together.

Invariants:

* Audiences are derived on the server from the stored user
  (``systemRole`` + role defaults + grants - revokes, and bound resources);
  a client can narrow what it receives, never widen it.
* An event with no audiences is never delivered.
* An event of tenant T is visible only to viewers of T, or to platform
  viewers whose scope includes T, and then only through ``role:`` and
  ``permission:`` audiences: ``user:`` and ``resource:`` ids are tenant-local,
  so a platform viewer never sees another tenant's personal events.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from tidings.errors import InvalidInput

KINDS = ("user", "role", "permission", "resource")
# Ids may hold letters, digits and a few separators; never whitespace,
# control characters or a second colon-free gap that could smuggle syntax.
_AUDIENCE_RE = re.compile(r"^(user|role|permission|resource):([A-Za-z0-9_.\-@:/]{1,200})$")
ALL_TENANTS = "*"


def parse_audience(text: object, *, field: str = "audiences") -> str:
    """Validate one canonical audience string and return it."""
    if not isinstance(text, str) or not _AUDIENCE_RE.fullmatch(text):
        raise InvalidInput(
            f"invalid audience {text!r}: expected user:<id>, role:<role>, "
            "permission:<key> or resource:<id>",
            field=field,
        )
    return text


def parse_audiences(values: object, *, field: str = "/audiences") -> tuple[str, ...]:
    if not isinstance(values, (list, tuple)):  # a tuple: decoded by msgspec
        raise InvalidInput("audiences must be a list of strings", field=field)
    seen: dict[str, None] = {}
    for i, value in enumerate(values):
        seen[parse_audience(value, field=f"{field}/{i}")] = None
    return tuple(seen)


@dataclass(frozen=True, slots=True)
class UserRecord:
    """A user as stored by Tidings (synced from the host application)."""

    tenant_id: str
    user_id: str
    system_role: str
    grants: frozenset[str] = frozenset()
    revokes: frozenset[str] = frozenset()
    resources: frozenset[str] = frozenset()
    platform: bool = False
    # For platform users: the tenants they may see besides their own, always
    # named (no default reach); ``("*",)`` means every tenant.
    platform_tenants: tuple[str, ...] = ()


def effective_permissions(
    user: UserRecord, role_defaults: Mapping[str, Iterable[str]]
) -> frozenset[str]:
    """Role defaults + grants - revokes (seed 003). ``role_defaults`` is the
    role -> permissions mapping already resolved for the user's tenant."""
    base = frozenset(role_defaults.get(user.system_role, ()))
    return (base | user.grants) - user.revokes


def derive_audiences(user: UserRecord, permissions: frozenset[str]) -> frozenset[str]:
    keys = {f"user:{user.user_id}", f"role:{user.system_role}"}
    keys.update(f"permission:{p}" for p in permissions)
    keys.update(f"resource:{r}" for r in user.resources)
    return frozenset(keys)


@dataclass(frozen=True, slots=True)
class Viewer:
    """Someone events may be shown to, with everything :func:`can_see` needs.

    ``everything`` marks operators (the admin key, admin-scoped API keys):
    they see every event of the tenants in scope.
    """

    tenant_id: str | None
    audiences: frozenset[str]
    permissions: frozenset[str]
    user_id: str | None = None
    platform_tenants: tuple[str, ...] = ()
    everything: bool = False
    cross_tenant_audiences: frozenset[str] = field(default=frozenset())

    @classmethod
    def for_user(cls, user: UserRecord, role_defaults: Mapping[str, Iterable[str]]) -> Viewer:
        perms = effective_permissions(user, role_defaults)
        audiences = derive_audiences(user, perms)
        cross = frozenset(a for a in audiences if a.startswith(("role:", "permission:")))
        return cls(
            tenant_id=user.tenant_id,
            audiences=audiences,
            permissions=perms,
            user_id=user.user_id,
            platform_tenants=user.platform_tenants if user.platform else (),
            cross_tenant_audiences=cross if user.platform else frozenset(),
        )

    @classmethod
    def operator(cls, tenant_id: str | None = None) -> Viewer:
        """An operator: every event of ``tenant_id`` (or of all tenants)."""
        return cls(
            tenant_id=tenant_id,
            audiences=frozenset(),
            permissions=frozenset({"*"}),
            platform_tenants=() if tenant_id else (ALL_TENANTS,),
            everything=True,
        )

    def sees_tenant(self, tenant_id: str) -> bool:
        return (
            tenant_id == self.tenant_id
            or ALL_TENANTS in self.platform_tenants
            or tenant_id in self.platform_tenants
        )

    def audiences_in(self, tenant_id: str) -> frozenset[str]:
        """The audiences this viewer holds for events of ``tenant_id``."""
        if tenant_id == self.tenant_id:
            return self.audiences
        if self.sees_tenant(tenant_id):
            return self.cross_tenant_audiences
        return frozenset()


def can_see(viewer: Viewer, tenant_id: str, audiences: Iterable[str]) -> bool:
    """Deny by default: True only if the viewer may see an event of
    ``tenant_id`` addressed to ``audiences``."""
    audience_set = audiences if isinstance(audiences, (set, frozenset)) else frozenset(audiences)
    if not audience_set:
        return False  # unscoped events are never delivered
    if viewer.everything:
        return viewer.sees_tenant(tenant_id)
    held = viewer.audiences_in(tenant_id)
    return not held.isdisjoint(audience_set)
