"""The audience model (seed 003): derivation, the predicate and the index
agree, for hand-picked cases and for random users, events and audiences."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tidings.core.audience import (
    UserRecord,
    Viewer,
    can_see,
    derive_audiences,
    effective_permissions,
    parse_audience,
)
from tidings.errors import InvalidInput
from tidings.hub.index import SubscriptionIndex

ROLE_DEFAULTS = {"manager": ["manageAllocations", "qms.read"], "standard": ["qms.read"]}


class Sub:
    def __init__(self, viewer: Viewer) -> None:
        self.viewer = viewer


def viewer(user: UserRecord, defaults: dict[str, list[str]] | None = None) -> Viewer:
    return Viewer.for_user(user, defaults or ROLE_DEFAULTS)


def test_effective_permissions_are_role_defaults_plus_grants_minus_revokes() -> None:
    user = UserRecord(
        "t1", "u1", "manager", grants=frozenset({"x"}), revokes=frozenset({"qms.read"})
    )
    assert effective_permissions(user, ROLE_DEFAULTS) == {"manageAllocations", "x"}


def test_derived_audiences_come_from_the_stored_user() -> None:
    user = UserRecord("t1", "u1", "standard", resources=frozenset({"r9"}))
    assert derive_audiences(user, frozenset({"qms.read"})) == {
        "user:u1",
        "role:standard",
        "permission:qms.read",
        "resource:r9",
    }


@pytest.mark.parametrize(
    "text",
    ["", "user:", "everyone", "user:a b", "role:x\n", "group:x", "user:a\rb", "permission:\u0000"],
)
def test_bad_audience_syntax_is_refused(text: str) -> None:
    with pytest.raises(InvalidInput):
        parse_audience(text)


# -- seed 003's three contract tests, on the predicate ----------------------


def test_standard_user_does_not_receive_manager_planning_traffic() -> None:
    standard = viewer(UserRecord("t1", "std", "standard"))
    assert not can_see(standard, "t1", ["permission:manageAllocations"])


def test_elevated_user_does_not_receive_another_users_personal_events() -> None:
    manager = viewer(UserRecord("t1", "boss", "manager"))
    assert not can_see(manager, "t1", ["user:someone-else"])
    assert can_see(manager, "t1", ["user:boss"])


def test_multi_audience_planning_reaches_only_matching_manager_and_resource() -> None:
    audiences = ["permission:manageAllocations", "resource:r1"]
    manager = viewer(UserRecord("t1", "m", "manager"))
    worker_r1 = viewer(UserRecord("t1", "w1", "standard", resources=frozenset({"r1"})))
    worker_r2 = viewer(UserRecord("t1", "w2", "standard", resources=frozenset({"r2"})))
    other_tenant_manager = viewer(UserRecord("t2", "m2", "manager"))
    assert can_see(manager, "t1", audiences)
    assert can_see(worker_r1, "t1", audiences)
    assert not can_see(worker_r2, "t1", audiences)
    assert not can_see(other_tenant_manager, "t1", audiences)


def test_unscoped_events_are_never_delivered() -> None:
    assert not can_see(viewer(UserRecord("t1", "m", "manager")), "t1", [])
    assert not can_see(Viewer.operator(), "t1", [])


def test_platform_users_see_roles_and_permissions_of_other_tenants_but_no_personal_events() -> None:
    ops = viewer(UserRecord("home", "ops1", "manager", platform=True, platform_tenants=("*",)))
    assert can_see(ops, "t7", ["permission:qms.read"])
    assert not can_see(ops, "t7", ["user:ops1"])
    assert not can_see(ops, "t7", ["resource:r1"])
    scoped = viewer(UserRecord("home", "ops2", "manager", platform=True, platform_tenants=("t7",)))
    assert can_see(scoped, "t7", ["role:manager"])
    assert not can_see(scoped, "t8", ["role:manager"])


# -- properties: the index and the predicate agree ---------------------------

TENANTS = st.sampled_from(["t1", "t2", "t3"])
IDS = st.sampled_from(["a", "b", "c", "d"])
PERMS = st.sampled_from(["p1", "p2", "p3", "manageAllocations"])
ROLES = st.sampled_from(["standard", "manager", "ops"])
AUDIENCE = st.one_of(
    IDS.map(lambda i: f"user:{i}"),
    ROLES.map(lambda r: f"role:{r}"),
    PERMS.map(lambda p: f"permission:{p}"),
    IDS.map(lambda i: f"resource:{i}"),
)
USERS = st.builds(
    UserRecord,
    tenant_id=TENANTS,
    user_id=IDS,
    system_role=ROLES,
    grants=st.frozensets(PERMS, max_size=2),
    revokes=st.frozensets(PERMS, max_size=2),
    resources=st.frozensets(IDS, max_size=2),
    platform=st.booleans(),
    platform_tenants=st.one_of(st.just(("*",)), st.lists(TENANTS, max_size=2).map(tuple)),
)
DEFAULTS = st.dictionaries(ROLES, st.lists(PERMS, max_size=3), max_size=3)
OPERATORS = st.one_of(st.none(), TENANTS).map(Viewer.operator)
EVENTS = st.tuples(TENANTS, st.lists(AUDIENCE, max_size=4))


@settings(max_examples=300, deadline=None)
@given(
    users=st.lists(USERS, max_size=6),
    operators=st.lists(OPERATORS, max_size=2),
    defaults=DEFAULTS,
    events=st.lists(EVENTS, max_size=6),
)
def test_index_matches_exactly_the_viewers_the_predicate_allows(
    users: list[UserRecord],
    operators: list[Viewer],
    defaults: dict[str, list[str]],
    events: list[tuple[str, list[str]]],
) -> None:
    subs = [Sub(Viewer.for_user(u, defaults)) for u in users] + [Sub(o) for o in operators]
    index: SubscriptionIndex[Sub] = SubscriptionIndex()
    for sub in subs:
        index.add(sub)
    for tenant, audiences in events:
        matched = set(index.matching(tenant, audiences))
        expected = {s for s in subs if can_see(s.viewer, tenant, audiences)}
        assert matched == expected


@settings(max_examples=300, deadline=None)
@given(user=USERS, defaults=DEFAULTS, tenant=TENANTS, audiences=st.lists(AUDIENCE, max_size=4))
def test_an_event_reaches_a_user_iff_tenant_matches_and_audiences_intersect(
    user: UserRecord, defaults: dict[str, list[str]], tenant: str, audiences: list[str]
) -> None:
    v = Viewer.for_user(user, defaults)
    perms = effective_permissions(user, defaults)
    own = derive_audiences(user, perms)
    if tenant == user.tenant_id:
        expected = bool(own & set(audiences))
    elif user.platform and ("*" in user.platform_tenants or tenant in user.platform_tenants):
        cross = {a for a in own if a.startswith(("role:", "permission:"))}
        expected = bool(cross & set(audiences))
    else:
        expected = False
    assert can_see(v, tenant, audiences) == expected


@settings(max_examples=100, deadline=None)
@given(
    users=st.lists(USERS, min_size=1, max_size=4),
    defaults=DEFAULTS,
    grant=PERMS,
    tenant=TENANTS,
    audiences=st.lists(AUDIENCE, max_size=4),
)
def test_reindex_after_a_permission_change_follows_the_new_viewer(
    users: list[UserRecord],
    defaults: dict[str, list[str]],
    grant: str,
    tenant: str,
    audiences: list[str],
) -> None:
    subs = [Sub(Viewer.for_user(u, defaults)) for u in users]
    index: SubscriptionIndex[Sub] = SubscriptionIndex()
    for sub in subs:
        index.add(sub)
    changed = UserRecord(
        users[0].tenant_id, users[0].user_id, users[0].system_role, grants=users[0].grants | {grant}
    )
    subs[0].viewer = Viewer.for_user(changed, defaults)
    index.reindex(subs[0])
    for sub in subs[1:]:
        index.remove(sub)
    assert set(index.matching(tenant, audiences)) == (
        {subs[0]} if can_see(subs[0].viewer, tenant, audiences) else set()
    )
