"""The identity use cases against a small in-memory fake of the store's
directory methods: each authorizes before it reads or writes, and each
change sends its control message (what closes or re-derives live streams)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tidings.core.audience import UserRecord
from tidings.errors import Forbidden, InvalidInput, NotFound
from tidings.services.auth import OPERATOR, Principal, hash_secret
from tidings.services.identity import MAX_KEY_LIFETIME_S, Identity, KeyRequest, UserChange
from tidings.store.base import ApiKeyRecord, TenantRecord

TENANT_ADMIN = Principal(kind="key", tenant_id="t1", scopes=frozenset({"admin"}), key_id="key_a")
PUBLISHER = Principal(kind="key", scopes=frozenset({"publish"}), key_id="key_p")
NOW = 1_000_000.0


class FakeDirectory:
    """Tenants, users, roles and API keys in dicts; ``writes`` lists every
    write in order."""

    def __init__(self) -> None:
        self.tenants: dict[str, TenantRecord] = {}
        self.users: dict[tuple[str, str], UserRecord] = {}
        self.keys: dict[str, ApiKeyRecord] = {}
        self.writes: list[tuple[Any, ...]] = []

    async def get_tenant(self, tenant_id: str) -> TenantRecord | None:
        return self.tenants.get(tenant_id)

    async def list_tenants(self) -> list[TenantRecord]:
        return list(self.tenants.values())

    async def put_tenant(self, tenant_id: str, name: str, settings: Any) -> TenantRecord:
        self.writes.append(("put_tenant", tenant_id))
        record = TenantRecord(tenant_id, name, "ACTIVE", settings, NOW, NOW)
        self.tenants[tenant_id] = record
        return record

    async def get_user(self, tenant_id: str, user_id: str) -> UserRecord | None:
        return self.users.get((tenant_id, user_id))

    async def list_users(self, tenant_id: str) -> list[UserRecord]:
        return [u for (t, _), u in self.users.items() if t == tenant_id]

    async def put_user(self, user: UserRecord) -> None:
        self.writes.append(("put_user", user.tenant_id, user.user_id))
        self.users[(user.tenant_id, user.user_id)] = user

    async def delete_user(self, tenant_id: str, user_id: str) -> bool:
        self.writes.append(("delete_user", tenant_id, user_id))
        return self.users.pop((tenant_id, user_id), None) is not None

    async def put_role(self, role: str, permissions: Any, tenant_id: str | None) -> None:
        self.writes.append(("put_role", role, tenant_id))

    async def create_api_key(self, record: ApiKeyRecord) -> None:
        self.writes.append(("create_api_key", record.id))
        self.keys[record.id] = record

    async def get_api_key_by_id(self, key_id: str) -> ApiKeyRecord | None:
        return self.keys.get(key_id)

    async def list_api_keys(self, tenant_id: str | None) -> list[ApiKeyRecord]:
        return [k for k in self.keys.values() if tenant_id is None or k.tenant_id == tenant_id]

    async def revoke_api_key(self, key_id: str, at: float) -> bool:
        self.writes.append(("revoke_api_key", key_id))
        from dataclasses import replace

        self.keys[key_id] = replace(self.keys[key_id], revoked_at=at)
        return True


class Controls:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    async def __call__(self, kind: str, **fields: Any) -> None:
        self.sent.append((kind, fields))


@pytest.fixture
def store() -> FakeDirectory:
    fake = FakeDirectory()
    for tenant_id in ("t1", "t2"):
        fake.tenants[tenant_id] = TenantRecord(tenant_id, tenant_id, "ACTIVE", {}, NOW, NOW)
    return fake


@pytest.fixture
def controls() -> Controls:
    return Controls()


@pytest.fixture
def identity(store: FakeDirectory, controls: Controls) -> Identity:
    return Identity(store, control=controls, publish_rate=100.0, clock=lambda: NOW)  # type: ignore[arg-type]


def key(key_id: str, tenant_id: str | None, revoked_at: float | None = None) -> ApiKeyRecord:
    return ApiKeyRecord(
        key_id, "h", "k", frozenset({"admin"}), tenant_id, NOW, revoked_at=revoked_at
    )


async def test_deleting_a_user_sends_user_deleted(
    identity: Identity, store: FakeDirectory, controls: Controls
) -> None:
    store.users[("t1", "ann")] = UserRecord("t1", "ann", "staff")
    await identity.delete_user(TENANT_ADMIN, "t1", "ann")
    assert ("t1", "ann") not in store.users
    assert controls.sent == [("user_deleted", {"tenant": "t1", "user": "ann"})]


async def test_deleting_a_missing_user_is_not_found_and_sends_nothing(
    identity: Identity, controls: Controls
) -> None:
    with pytest.raises(NotFound):
        await identity.delete_user(OPERATOR, "t1", "nobody")
    assert controls.sent == []


async def test_only_global_credentials_delete_a_platform_user(
    identity: Identity, store: FakeDirectory, controls: Controls
) -> None:
    store.users[("t1", "olga")] = UserRecord("t1", "olga", "op", platform=True)
    with pytest.raises(Forbidden):
        await identity.delete_user(TENANT_ADMIN, "t1", "olga")
    assert ("t1", "olga") in store.users and controls.sent == []


async def test_revoking_sends_api_key_revoked_even_the_second_time(
    identity: Identity, store: FakeDirectory, controls: Controls
) -> None:
    store.keys["key_1"] = key("key_1", "t1")
    await identity.revoke_api_key(TENANT_ADMIN, "key_1")
    await identity.revoke_api_key(TENANT_ADMIN, "key_1")
    assert store.writes == [("revoke_api_key", "key_1")]  # revoked once, at the first call
    assert store.keys["key_1"].revoked_at == NOW
    assert controls.sent == [("api_key_revoked", {"tenant": "t1", "key": "key_1"})] * 2


async def test_another_tenants_key_is_not_found_and_stays_live(
    identity: Identity, store: FakeDirectory, controls: Controls
) -> None:
    store.keys["key_2"] = key("key_2", "t2")
    with pytest.raises(NotFound):
        await identity.revoke_api_key(TENANT_ADMIN, "key_2")
    assert store.keys["key_2"].revoked_at is None and controls.sent == []


async def test_unauthorized_callers_are_refused_before_any_write(
    identity: Identity, store: FakeDirectory, controls: Controls
) -> None:
    store.users[("t1", "ann")] = UserRecord("t1", "ann", "staff")
    store.keys["key_1"] = key("key_1", "t1")
    calls = [
        identity.put_tenant(TENANT_ADMIN, "t1", "renamed", {}),
        identity.put_tenant(PUBLISHER, "t3", "new", {}),
        identity.put_user(PUBLISHER, "t1", "bob", UserChange("staff")),
        identity.put_user(TENANT_ADMIN, "t2", "bob", UserChange("staff")),
        identity.put_user(
            TENANT_ADMIN, "t1", "bob", UserChange("op", platform=True, platform_tenants=["*"])
        ),
        identity.delete_user(PUBLISHER, "t1", "ann"),
        identity.put_role(TENANT_ADMIN, "staff", ["a.read"], None),
        identity.put_role(PUBLISHER, "staff", ["a.read"], "t1"),
        identity.create_api_key(TENANT_ADMIN, KeyRequest("k", frozenset({"admin"}), "t2")),
        identity.create_api_key(TENANT_ADMIN, KeyRequest("k", frozenset({"admin"}), None)),
        identity.revoke_api_key(PUBLISHER, "key_1"),
        identity.list_api_keys(TENANT_ADMIN, "t2"),
        identity.list_users(TENANT_ADMIN, "t2"),
        identity.get_tenant(PUBLISHER, "t1"),
    ]
    for call in calls:
        with pytest.raises(Forbidden):
            await call
    assert store.writes == [] and controls.sent == []


async def test_put_user_checks_then_writes_then_re_derives_streams(
    identity: Identity, store: FakeDirectory, controls: Controls
) -> None:
    change = UserChange(
        "staff", grants=["qms.read"], revokes=["qms.pii.read"], resources=["hangar-2"]
    )
    user = await identity.put_user(TENANT_ADMIN, "t1", "bob", change)
    assert user == UserRecord(
        "t1",
        "bob",
        "staff",
        grants=frozenset({"qms.read"}),
        revokes=frozenset({"qms.pii.read"}),
        resources=frozenset({"hangar-2"}),
    )
    assert store.users[("t1", "bob")] == user
    assert controls.sent == [("user_changed", {"tenant": "t1", "user": "bob"})]


async def test_put_user_points_at_the_bad_field(identity: Identity, store: FakeDirectory) -> None:
    cases = [
        (UserChange("s", grants=["ok", "bad perm"]), "/permissionOverrides/grant/1"),
        (UserChange("s", platform=True), "/platformTenants"),
        (UserChange("s", platform=True, platform_tenants=["*", "t1"]), "/platformTenants"),
        (UserChange("s", platform=True, platform_tenants=["t1", "t9"]), "/platformTenants/1"),
        (UserChange("s", platform_tenants=["t1"]), "/platformTenants"),
    ]
    for change, field in cases:
        with pytest.raises(InvalidInput) as caught:
            await identity.put_user(OPERATOR, "t1", "bob", change)
        assert caught.value.field == field
    with pytest.raises(NotFound):
        await identity.put_user(OPERATOR, "t9", "bob", UserChange("s"))
    assert store.writes == []


async def test_platform_reach_is_deduplicated(identity: Identity) -> None:
    change = UserChange("op", platform=True, platform_tenants=["t2", "t1", "t2"])
    user = await identity.put_user(OPERATOR, "t1", "olga", change)
    assert user.platform_tenants == ("t2", "t1")


async def test_put_role_sends_roles_changed(identity: Identity, controls: Controls) -> None:
    assert await identity.put_role(TENANT_ADMIN, "staff", ["b", "a", "b"], "t1") == ["a", "b"]
    assert controls.sent == [("roles_changed", {"tenant": "t1", "role": "staff"})]


async def test_put_tenant_says_whether_it_created(identity: Identity, controls: Controls) -> None:
    _, created = await identity.put_tenant(OPERATOR, "t3", "Three", {})
    _, again = await identity.put_tenant(OPERATOR, "t3", "Three", {})
    assert (created, again) == (True, False)
    assert controls.sent == [("tenant_changed", {"tenant": "t3"})] * 2


async def test_a_tenant_admin_lists_its_own_tenant_only(identity: Identity) -> None:
    assert [t.id for t in await identity.list_tenants(TENANT_ADMIN)] == ["t1"]
    assert [t.id for t in await identity.list_tenants(OPERATOR)] == ["t1", "t2"]


async def test_a_created_key_is_stored_as_a_hash_and_shown_once(
    identity: Identity, store: FakeDirectory
) -> None:
    request = KeyRequest("ci", frozenset({"publish"}), "t1", expires_in_s=60.0)
    record, secret = await identity.create_api_key(TENANT_ADMIN, request)
    assert store.keys[record.id] == record
    assert record.key_hash == hash_secret(secret) and secret not in repr(record)
    assert (record.created_at, record.expires_at, record.tenant_id) == (NOW, NOW + 60.0, "t1")


async def test_key_expiry_is_one_future_instant(identity: Identity, store: FakeDirectory) -> None:
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(NOW + 3600))
    record, _ = await identity.create_api_key(
        OPERATOR, KeyRequest("k", frozenset({"admin"}), expires_at=at)
    )
    assert record.expires_at == NOW + 3600
    too_far = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(NOW + MAX_KEY_LIFETIME_S + 60))
    bad = [
        (KeyRequest("k", frozenset({"admin"}), expires_at=at, expires_in_s=1), "/expiresInS"),
        (KeyRequest("k", frozenset({"admin"}), expires_at="1970-01-01T00:00:00Z"), "/expiresAt"),
        (KeyRequest("k", frozenset({"admin"}), expires_at=too_far), "/expiresAt"),
    ]
    for request, field in bad:
        with pytest.raises(InvalidInput) as caught:
            await identity.create_api_key(OPERATOR, request)
        assert caught.value.field == field
    assert len(store.keys) == 1


async def test_a_tenant_bound_caller_only_lowers_the_publish_rate(
    identity: Identity, store: FakeDirectory
) -> None:
    for rate in (0.0, 101.0):
        with pytest.raises(Forbidden):
            await identity.create_api_key(
                TENANT_ADMIN, KeyRequest("k", frozenset({"publish"}), "t1", publish_rate=rate)
            )
    assert store.keys == {}
    record, _ = await identity.create_api_key(
        TENANT_ADMIN, KeyRequest("k", frozenset({"publish"}), "t1", publish_rate=5.0)
    )
    assert record.publish_rate == 5.0
    unlimited, _ = await identity.create_api_key(
        OPERATOR, KeyRequest("k", frozenset({"publish"}), "t1", publish_rate=0.0)
    )
    assert unlimited.publish_rate == 0.0


async def test_listing_keys_keeps_to_the_scope_and_the_revoked_filter(
    identity: Identity, store: FakeDirectory
) -> None:
    store.keys["key_1"] = key("key_1", "t1")
    store.keys["key_2"] = key("key_2", "t1", revoked_at=NOW)
    store.keys["key_3"] = key("key_3", "t2")
    assert [k.id for k in await identity.list_api_keys(TENANT_ADMIN, None)] == ["key_1", "key_2"]
    assert [k.id for k in await identity.list_api_keys(TENANT_ADMIN, None, revoked=True)] == [
        "key_2"
    ]
    assert [k.id for k in await identity.list_api_keys(OPERATOR, "t2", revoked=False)] == ["key_3"]
