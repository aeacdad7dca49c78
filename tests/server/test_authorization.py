"""Who may do what, every cell over real HTTP (issue 12, defect 2): each
operation that takes a credential x each kind of credential, on SQLite and
PostgreSQL. The expected answers are written here, independently of
``tidings.access`` (the table the routes ask), so a change of the policy
fails a cell.

Kinds: the bootstrap admin key; a global admin key; an admin key bound to
the target tenant T ("tenant_admin") and one bound to another tenant O
("other_admin"); publish keys bound to T, to O, and global; a user of T and
one of O; no credential. Every cell gets a fresh tenant T (and fresh
objects), so cells never depend on each other.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from support import ADMIN_KEY, Admin, ServerProcess, bearer, unique
from tidings.services.access import may
from tidings.services.auth import Principal

KINDS = (
    "bootstrap",
    "global_admin",
    "tenant_admin",
    "other_admin",
    "publish",
    "other_publish",
    "global_publish",
    "user",
    "other_user",
    "none",
)
PLATFORM = {"bootstrap", "global_admin"}
ADMINS_OF_T = PLATFORM | {"tenant_admin"}
ANY_ADMIN = ADMINS_OF_T | {"other_admin"}
SERVICES_OF_T = ADMINS_OF_T | {"publish", "global_publish"}
READERS_OF_T = ADMINS_OF_T | {"user"}
USERS = {"user", "other_user"}
ANYONE = set(KINDS) - {"none"}
# Reachable without a bearer credential (or another slice's): not cells here.
PUBLIC = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("POST", "/api/inbound/{name}"),
}
WEBHOOK = {"type": "trigger_webhook", "config": {"url": "https://93.184.215.14/hook"}}
NOTIFY = {"type": "send_notification", "config": {"audience": "user:u1", "title": "hi"}}


def expect(ok: Iterable[str], status: int = 200, hidden: Iterable[str] = ()) -> dict[str, int]:
    """``ok`` kinds get ``status``; ``hidden`` ones 404 (the object exists
    out of their scope and is not revealed); no credential 401; others 403."""
    allowed, secret = set(ok), set(hidden)
    return {
        kind: status
        if kind in allowed
        else 401
        if kind == "none"
        else 404
        if kind in secret
        else 403
        for kind in KINDS
    }


@dataclass
class World:
    """Set-up for one cell, done with the bootstrap admin key."""

    admin: Admin
    other: str  # tenant O (shared, never changed)
    tenant: str = field(default="")  # tenant T (fresh per cell)

    def __post_init__(self) -> None:
        self.tenant = self.admin.tenant()

    @property
    def http(self) -> httpx.Client:
        return self.admin.http

    def ok(self, response: httpx.Response) -> Any:
        assert response.is_success, response.text
        return response.json() if response.content else None

    def user(self, user_id: str = "u1", **extra: Any) -> str:
        self.admin.user(self.tenant, user_id, **extra)
        return user_id

    def platform_user(self) -> str:
        user_id = unique("ops")
        self.admin.user(self.tenant, user_id, platform=True, platform_tenants=[self.other])
        return user_id

    def key(self, scopes: list[str], tenant: str | None) -> dict[str, Any]:
        body = {"scopes": scopes, "tenantId": tenant}
        return dict(self.ok(self.http.post("/api/admin/api-keys", json=body)))

    def rule(self, action: dict[str, Any] = WEBHOOK, tenant: str | None = "T") -> dict[str, Any]:
        body = self.rule_body(action, self.tenant if tenant == "T" else tenant)
        return dict(self.ok(self.http.post("/api/admin/rules", json=body)))

    def rule_body(self, action: dict[str, Any], tenant: str | None) -> dict[str, Any]:
        return {
            "name": unique("rule"),
            "tenantId": tenant,
            "enabled": action is not WEBHOOK,  # never call out
            "trigger": {"type": "course.completed"},
            "action": action,
        }

    def event(self) -> dict[str, Any]:
        return {
            "type": "course.completed",
            "tenantId": self.tenant,
            "data": {"courseId": "c-1", "userId": "u1", "completedAt": "2026-11-22T10:00:00Z"},
        }

    def job(self) -> int:
        """A finished job of T (a notification rule fired by one event)."""
        created = self.rule(NOTIFY)
        self.ok(self.http.post("/api/events", json=self.event()))
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            items = self.ok(self.http.get("/api/admin/jobs", params={"ruleId": created["id"]}))
            if items["items"] and items["items"][0]["status"] == "succeeded":
                return int(items["items"][0]["id"])
            time.sleep(0.05)
        raise AssertionError("no job")

    def published(self) -> str:
        return str(self.ok(self.http.post("/api/events", json=self.event()))["id"])

    def tenant_type(self) -> str:
        name = f"acme.{unique('w')}.created"
        body = {"name": name, "fields": "tenantId, widgetId"}
        self.ok(self.http.post(f"/api/admin/catalog/{self.tenant}/types", json=body))
        return name

    def ticket(self) -> str:
        ticket = unique("tk")
        body = {"to": "TRIAGED", "tenantId": self.tenant}
        self.ok(self.http.post(f"/api/entities/ticket/{ticket}/transition", json=body))
        return ticket


Call = tuple[str, str, dict[str, Any]]  # method, path, httpx keyword arguments


@dataclass(frozen=True)
class Op:
    method: str
    template: str  # the path as the OpenAPI document names it
    expected: dict[str, int]
    build: Callable[[World], Call]
    name: str = ""


def op(
    method: str, template: str, expected: dict[str, int], name: str = ""
) -> Callable[[Callable[[World], Call]], Op]:
    def wrap(build: Callable[[World], Call]) -> Op:
        return Op(method, template, expected, build, name)

    return wrap


def call(method: str, path: str, **kwargs: Any) -> Call:
    return method, path, kwargs


T = "/api/admin/tenants/{tenant_id}"
OPS: list[Op] = []


def register(*ops: Op) -> None:
    OPS.extend(ops)


# -- tenants, users, roles --------------------------------------------------------

register(
    op("PUT", T, expect(PLATFORM, 201))(
        lambda w: call("PUT", f"/api/admin/tenants/{unique('new')}", json={"name": "n"})
    ),
    op("PUT", T, expect(PLATFORM), "update own tenant")(
        lambda w: call(
            "PUT", f"/api/admin/tenants/{w.tenant}", json={"name": "n", "settings": {"a": 1}}
        )
    ),
    op("GET", "/api/admin/tenants", expect(ANY_ADMIN))(lambda w: call("GET", "/api/admin/tenants")),
    op("GET", T, expect(ADMINS_OF_T))(lambda w: call("GET", f"/api/admin/tenants/{w.tenant}")),
    op("POST", T + "/transition", expect(PLATFORM))(
        lambda w: call("POST", f"/api/admin/tenants/{w.tenant}/transition", json={"to": "ACTIVE"})
    ),
    op("GET", T + "/lifecycle", expect(ADMINS_OF_T))(
        lambda w: call("GET", f"/api/admin/tenants/{w.tenant}/lifecycle")
    ),
    op("PUT", T + "/users/{user_id}", expect(ADMINS_OF_T))(
        lambda w: call(
            "PUT", f"/api/admin/tenants/{w.tenant}/users/{unique('u')}", json={"systemRole": "m"}
        )
    ),
    op("PUT", T + "/users/{user_id}", expect(PLATFORM), "make a platform user of one tenant")(
        lambda w: call(
            "PUT",
            f"/api/admin/tenants/{w.tenant}/users/{unique('u')}",
            json={"systemRole": "m", "platform": True, "platformTenants": [w.other]},
        )
    ),
    op("PUT", T + "/users/{user_id}", expect(PLATFORM), "make a platform user of all")(
        lambda w: call(
            "PUT",
            f"/api/admin/tenants/{w.tenant}/users/{unique('u')}",
            json={"systemRole": "m", "platform": True, "platformTenants": ["*"]},
        )
    ),
    op("PUT", T + "/users/{user_id}", expect(PLATFORM), "change a platform user")(
        lambda w: call(
            "PUT",
            f"/api/admin/tenants/{w.tenant}/users/{w.platform_user()}",
            json={"systemRole": "m", "permissionOverrides": {"grant": ["pii.read"]}},
        )
    ),
    op("GET", T + "/users/{user_id}", expect(ADMINS_OF_T))(
        lambda w: call("GET", f"/api/admin/tenants/{w.tenant}/users/{w.user()}")
    ),
    op("GET", T + "/users", expect(ADMINS_OF_T))(
        lambda w: call("GET", f"/api/admin/tenants/{w.tenant}/users")
    ),
    op("DELETE", T + "/users/{user_id}", expect(ADMINS_OF_T, 204))(
        lambda w: call("DELETE", f"/api/admin/tenants/{w.tenant}/users/{w.user(unique('d'))}")
    ),
    op("DELETE", T + "/users/{user_id}", expect(PLATFORM, 204), "delete a platform user")(
        lambda w: call("DELETE", f"/api/admin/tenants/{w.tenant}/users/{w.platform_user()}")
    ),
    op("PUT", "/api/admin/roles/{role}", expect(PLATFORM), "global role")(
        lambda w: call("PUT", f"/api/admin/roles/{unique('r')}", json={"permissions": ["a.b"]})
    ),
    op("PUT", "/api/admin/roles/{role}", expect(ADMINS_OF_T), "tenant role override")(
        lambda w: call(
            "PUT",
            f"/api/admin/roles/{unique('r')}",
            json={"permissions": ["a.b"], "tenantId": w.tenant},
        )
    ),
)

# -- API keys -------------------------------------------------------------------

register(
    op("POST", "/api/admin/api-keys", expect(ADMINS_OF_T, 201), "tenant key")(
        lambda w: call(
            "POST", "/api/admin/api-keys", json={"scopes": ["publish"], "tenantId": w.tenant}
        )
    ),
    op("POST", "/api/admin/api-keys", expect(PLATFORM, 201), "global key")(
        lambda w: call("POST", "/api/admin/api-keys", json={"scopes": ["publish"]})
    ),
    op("GET", "/api/admin/api-keys", expect(ANY_ADMIN))(
        lambda w: call("GET", "/api/admin/api-keys")
    ),
    op("GET", "/api/admin/api-keys", expect(ADMINS_OF_T), "list T's keys")(
        lambda w: call("GET", "/api/admin/api-keys", params={"tenantId": w.tenant})
    ),
    op("DELETE", "/api/admin/api-keys/{key_id}", expect(ADMINS_OF_T, 204, {"other_admin"}))(
        lambda w: call("DELETE", f"/api/admin/api-keys/{w.key(['publish'], w.tenant)['id']}")
    ),
    op(
        "DELETE",
        "/api/admin/api-keys/{key_id}",
        expect(PLATFORM, 204, {"tenant_admin", "other_admin"}),
        "revoke a global key",
    )(lambda w: call("DELETE", f"/api/admin/api-keys/{w.key(['publish'], None)['id']}")),
)

# -- automation -----------------------------------------------------------------

R = "/api/admin/rules/{rule_id}"
J = "/api/admin/jobs/{job_id}"
HIDDEN = {"other_admin"}
register(
    op("GET", "/api/admin/actions", expect(ANY_ADMIN))(lambda w: call("GET", "/api/admin/actions")),
    op("POST", "/api/admin/rules", expect(ADMINS_OF_T, 201))(
        lambda w: call("POST", "/api/admin/rules", json=w.rule_body(WEBHOOK, w.tenant))
    ),
    op("POST", "/api/admin/rules", expect(PLATFORM, 201), "global rule")(
        lambda w: call("POST", "/api/admin/rules", json=w.rule_body(WEBHOOK, None))
    ),
    op("GET", "/api/admin/rules", expect(ANY_ADMIN))(lambda w: call("GET", "/api/admin/rules")),
    op("POST", "/api/admin/rules/test", expect(ADMINS_OF_T))(
        lambda w: call(
            "POST",
            "/api/admin/rules/test",
            json={"rule": w.rule_body(NOTIFY, w.tenant), "event": w.event()},
        )
    ),
    op("GET", R, expect(ADMINS_OF_T, 200, HIDDEN))(
        lambda w: call("GET", f"/api/admin/rules/{w.rule()['id']}")
    ),
    op("GET", R, expect(PLATFORM, 200, {"tenant_admin", "other_admin"}), "a global rule")(
        lambda w: call("GET", f"/api/admin/rules/{w.rule(tenant=None)['id']}")
    ),
    op("PUT", R, expect(ADMINS_OF_T, 200, HIDDEN))(
        lambda w: call(
            "PUT", f"/api/admin/rules/{w.rule()['id']}", json=w.rule_body(WEBHOOK, w.tenant)
        )
    ),
    op("PUT", R, expect(PLATFORM, 200, HIDDEN), "make a rule global")(
        lambda w: call("PUT", f"/api/admin/rules/{w.rule()['id']}", json=w.rule_body(WEBHOOK, None))
    ),
    op("DELETE", R, expect(ADMINS_OF_T, 204, HIDDEN))(
        lambda w: call("DELETE", f"/api/admin/rules/{w.rule()['id']}")
    ),
    op("POST", R + "/test", expect(ADMINS_OF_T, 200, HIDDEN))(
        lambda w: call("POST", f"/api/admin/rules/{w.rule()['id']}/test", json={"event": w.event()})
    ),
    op("POST", R + "/rotate-secret", expect(ADMINS_OF_T, 200, HIDDEN))(
        lambda w: call("POST", f"/api/admin/rules/{w.rule()['id']}/rotate-secret", json={})
    ),
    op("GET", "/api/admin/rule-packs", expect(ANY_ADMIN))(
        lambda w: call("GET", "/api/admin/rule-packs")
    ),
    op("POST", "/api/admin/rule-packs", expect(ADMINS_OF_T))(
        lambda w: call("POST", "/api/admin/rule-packs", json={"tenantId": w.tenant, "rules": []})
    ),
    op("POST", "/api/admin/rule-packs", expect(PLATFORM), "a global pack")(
        lambda w: call("POST", "/api/admin/rule-packs", json={"tenantId": None, "rules": []})
    ),
    op("POST", "/api/admin/rule-packs/{name}", expect(ADMINS_OF_T))(
        lambda w: call("POST", "/api/admin/rule-packs/lms-awareness", json={"tenantId": w.tenant})
    ),
    op("POST", "/api/admin/rule-packs/{name}", expect(PLATFORM), "a global pack")(
        lambda w: call("POST", "/api/admin/rule-packs/lms-awareness", json={"tenantId": None})
    ),
    op("GET", "/api/admin/jobs", expect(ANY_ADMIN))(lambda w: call("GET", "/api/admin/jobs")),
    op("GET", "/api/admin/jobs", expect(ADMINS_OF_T), "T's jobs")(
        lambda w: call("GET", "/api/admin/jobs", params={"tenantId": w.tenant})
    ),
    op("GET", J, expect(ADMINS_OF_T, 200, HIDDEN))(
        lambda w: call("GET", f"/api/admin/jobs/{w.job()}")
    ),
    op("POST", J + "/retry", expect(ADMINS_OF_T, 200, HIDDEN))(
        lambda w: call("POST", f"/api/admin/jobs/{w.job()}/retry")
    ),
    # allowed kinds reach the state check: a succeeded job cannot be discarded
    op("POST", J + "/discard", expect(ADMINS_OF_T, 422, HIDDEN))(
        lambda w: call("POST", f"/api/admin/jobs/{w.job()}/discard", json={"reason": "x"})
    ),
    op("POST", "/api/admin/jobs/retry", expect(ANY_ADMIN))(
        lambda w: call("POST", "/api/admin/jobs/retry", json={"ids": [w.job()]})
    ),
    op("POST", "/api/admin/jobs/discard", expect(ANY_ADMIN))(
        lambda w: call("POST", "/api/admin/jobs/discard", json={"ids": [1], "reason": "x"})
    ),
    op("GET", "/api/admin/events/{event_id}/processing", expect(ANY_ADMIN))(
        lambda w: call("GET", f"/api/admin/events/{w.published()}/processing")
    ),
    op("GET", "/api/admin/events/{event_id}/processing", expect(ADMINS_OF_T), "named tenant")(
        lambda w: call(
            "GET",
            f"/api/admin/events/{w.published()}/processing",
            params={"tenantId": w.tenant},
        )
    ),
    op("POST", "/api/admin/replay", expect(ADMINS_OF_T))(
        lambda w: call(
            "POST",
            "/api/admin/replay",
            json={"from": "0", "to": str(time.time()), "tenantId": w.tenant, "dryRun": True},
        )
    ),
    op("POST", "/api/admin/replay", expect(PLATFORM), "every tenant")(
        lambda w: call(
            "POST",
            "/api/admin/replay",
            json={"from": str(time.time() - 1), "to": str(time.time()), "dryRun": True},
        )
    ),
)

# -- catalog, integrations, state machines ---------------------------------------

C = "/api/admin/catalog/{tenant_id}/types"
register(
    op("GET", "/api/catalog", expect(ANYONE))(lambda w: call("GET", "/api/catalog")),
    op(
        "GET",
        "/api/catalog",
        expect(ANYONE - {"other_admin", "other_publish", "other_user"}),
        "T's catalog",
    )(lambda w: call("GET", "/api/catalog", params={"tenantId": w.tenant})),
    op("GET", "/api/catalog/asyncapi.json", expect(ANYONE))(
        lambda w: call("GET", "/api/catalog/asyncapi.json")
    ),
    op("GET", "/api/catalog/schemas.json", expect(ANYONE))(
        lambda w: call("GET", "/api/catalog/schemas.json")
    ),
    op("GET", "/api/catalog/{event_type}", expect(ANYONE))(
        lambda w: call("GET", "/api/catalog/course.completed")
    ),
    op("GET", C, expect(ADMINS_OF_T))(
        lambda w: call("GET", f"/api/admin/catalog/{w.tenant}/types")
    ),
    op("POST", C, expect(ADMINS_OF_T, 201))(
        lambda w: call(
            "POST",
            f"/api/admin/catalog/{w.tenant}/types",
            json={"name": f"acme.{unique('w')}.created", "fields": "tenantId, thingId"},
        )
    ),
    op("GET", C + "/{event_type}", expect(ADMINS_OF_T))(
        lambda w: call("GET", f"/api/admin/catalog/{w.tenant}/types/{w.tenant_type()}")
    ),
    op("PATCH", C + "/{event_type}", expect(ADMINS_OF_T))(
        lambda w: call(
            "PATCH",
            f"/api/admin/catalog/{w.tenant}/types/{w.tenant_type()}",
            json={"description": "changed"},
        )
    ),
    op("POST", C + "/{event_type}/versions", expect(ADMINS_OF_T, 201))(
        lambda w: call(
            "POST",
            f"/api/admin/catalog/{w.tenant}/types/{w.tenant_type()}/versions",
            json={"fields": "tenantId, widgetId, note?"},
        )
    ),
    op("PUT", "/api/admin/integrations/{name}", expect(PLATFORM))(
        lambda w: call(
            "PUT", f"/api/admin/integrations/{unique('in')}", json={"secret": "whsec_0123456789"}
        )
    ),
    op("GET", "/api/admin/integrations/{name}/log", expect(PLATFORM))(
        lambda w: call("GET", f"/api/admin/integrations/{unique('in')}/log")
    ),
    op("PUT", "/api/admin/state-machines/{entity_type}", expect(PLATFORM))(
        lambda w: call(
            "PUT",
            f"/api/admin/state-machines/{unique('door')}",
            json={"states": ["A", "B"], "initial": "A", "transitions": {"A": ["B"]}},
        )
    ),
)

# -- entities, notifications, events ---------------------------------------------

E = "/api/entities/{entity_type}/{entity_id}"
register(
    op("POST", E + "/transition", expect(SERVICES_OF_T | {"user"}))(
        lambda w: (
            w.user(),
            call(
                "POST",
                f"/api/entities/ticket/{unique('tk')}/transition",
                json={"to": "CANCELLED", "tenantId": w.tenant},
            ),
        )[1]
    ),
    op("GET", E + "/timeline", expect(READERS_OF_T))(
        lambda w: call(
            "GET", f"/api/entities/ticket/{w.ticket()}/timeline", params={"tenantId": w.tenant}
        )
    ),
    op("GET", E + "/timeline", expect(ADMINS_OF_T), "the tenant lifecycle")(
        lambda w: call(
            "GET", f"/api/entities/tenant/{w.tenant}/timeline", params={"tenantId": w.tenant}
        )
    ),
    op("POST", "/api/notifications", expect(SERVICES_OF_T, 201))(
        lambda w: call(
            "POST",
            "/api/notifications",
            json={"tenantId": w.tenant, "userId": w.user(), "type": "x", "title": "t"},
        )
    ),
    op("GET", "/api/notifications", expect(USERS))(lambda w: call("GET", "/api/notifications")),
    op("GET", "/api/notifications/unread-count", expect(USERS))(
        lambda w: call("GET", "/api/notifications/unread-count")
    ),
    # allowed kinds reach the lookup: nobody has that notification
    op("POST", "/api/notifications/read", expect(USERS, 404))(
        lambda w: call("POST", "/api/notifications/read", json={"ids": ["ntf_x"]})
    ),
    op("POST", "/api/notifications/read-all", expect(USERS))(
        lambda w: call("POST", "/api/notifications/read-all")
    ),
    op("POST", "/api/events", expect(SERVICES_OF_T, 202))(
        lambda w: call("POST", "/api/events", json=w.event())
    ),
    op("POST", "/api/events/batch", expect(SERVICES_OF_T, 202))(
        lambda w: call("POST", "/api/events/batch", json={"events": [w.event(), w.event()]})
    ),
    op("POST", "/api/events/tickets", expect(USERS, 201))(
        lambda w: call("POST", "/api/events/tickets")
    ),
    op("GET", "/api/events/log", expect(ANY_ADMIN | USERS))(
        lambda w: call("GET", "/api/events/log")
    ),
    op("GET", "/api/events/log", expect(READERS_OF_T | {"other_user"}), "T's history")(
        lambda w: call("GET", "/api/events/log", params={"tenantId": w.tenant})
    ),
    op("GET", "/api/events/export", expect(ANY_ADMIN | USERS))(
        lambda w: call("GET", "/api/events/export")
    ),
    op("GET", "/api/events/export", expect(READERS_OF_T | {"other_user"}), "T's export")(
        lambda w: call("GET", "/api/events/export", params={"tenantId": w.tenant})
    ),
    op("GET", "/api/events", expect(READERS_OF_T | {"other_user"}))(
        lambda w: call("GET", "/api/events", params={"tenantId": w.tenant})
    ),
    op("GET", "/qms/events", expect(READERS_OF_T | {"other_user"}))(
        lambda w: call("GET", "/qms/events", params={"tenantId": w.tenant})
    ),
    # a refused WebSocket handshake is a bare 403, whatever the reason
    op("GET", "/ws/events", {k: 101 if k in READERS_OF_T | {"other_user"} else 403 for k in KINDS})(
        lambda w: call("GET", "/ws/events", params={"tenantId": w.tenant})
    ),
)


# -- the cells --------------------------------------------------------------------


@pytest.fixture(scope="module")
def other_tenant(server: ServerProcess) -> Iterator[str]:
    admin = Admin(server.url)
    tenant = admin.tenant()
    admin.user(tenant, "u1")
    yield tenant
    admin.close()


def credential(kind: str, world: World) -> dict[str, str]:
    t, o = world.tenant, world.other
    if kind == "none":
        return {}
    if kind == "bootstrap":
        return bearer(ADMIN_KEY)
    if kind in ("user", "other_user"):
        tenant = t if kind == "user" else o
        return bearer(world.admin.user(tenant, "u1"))
    scopes, tenant = {
        "global_admin": (["admin"], None),
        "tenant_admin": (["admin"], t),
        "other_admin": (["admin"], o),
        "publish": (["publish"], t),
        "other_publish": (["publish"], o),
        "global_publish": (["publish"], None),
    }[kind]
    return bearer(world.key(scopes, tenant)["key"])


def send(server: ServerProcess, headers: dict[str, str], request: Call) -> int:
    method, path, kwargs = request
    if path == "/ws/events":
        return handshake(server, headers, path, kwargs["params"])
    with httpx.Client(base_url=server.url, headers=headers, timeout=15) as client:
        if path in ("/api/events", "/qms/events") and method == "GET":
            with client.stream("GET", path, **kwargs) as response:
                return response.status_code  # a stream: the status is enough
        return client.request(method, path, **kwargs).status_code


def handshake(
    server: ServerProcess, headers: dict[str, str], path: str, params: dict[str, str]
) -> int:
    """The status of a WebSocket handshake: 101 when the server accepted it."""
    url = server.url.replace("http", "ws", 1) + f"{path}?{urlencode(params)}"
    try:
        with connect(url, additional_headers=headers, open_timeout=15):
            return 101
    except InvalidStatus as refused:
        return refused.response.status_code


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "operation", OPS, ids=lambda o: f"{o.method} {o.template} {o.name}".strip()
)
def test_every_operation_for_every_credential_kind(
    server: ServerProcess, admin: Admin, other_tenant: str, operation: Op, kind: str
) -> None:
    world = World(admin, other_tenant)
    headers = credential(kind, world)
    request = operation.build(world)
    status = send(server, headers, request)
    assert status == operation.expected[kind], (kind, request)


def test_the_table_covers_every_operation_of_the_api(server: ServerProcess) -> None:
    document = httpx.get(f"{server.url}/openapi.json").json()
    declared = {(method.upper(), path) for path, ops in document["paths"].items() for method in ops}
    covered = {(o.method, o.template) for o in OPS}
    assert declared - PUBLIC == covered


def test_listings_show_only_the_callers_scope(
    server: ServerProcess, admin: Admin, other_tenant: str
) -> None:
    """Where a cell above is 200 for a credential of another tenant, what it
    gets holds nothing of T."""
    world = World(admin, other_tenant)
    world.rule(NOTIFY)
    world.published()
    for kind in ("other_admin", "other_user"):
        with httpx.Client(base_url=server.url, headers=credential(kind, world)) as client:
            history = client.get("/api/events/log").json()["items"]
            assert (history and {e["tenantId"] for e in history} == {other_tenant}) or not history
            assert all(e["tenantId"] != world.tenant for e in history)
            if kind == "other_admin":
                tenants = client.get("/api/admin/tenants").json()["items"]
                assert [t["id"] for t in tenants] == [other_tenant]
                for path in ("/api/admin/rules", "/api/admin/jobs", "/api/admin/api-keys"):
                    items = client.get(path).json()["items"]
                    assert all(i["tenantId"] == other_tenant for i in items), path
                retried = client.post("/api/admin/jobs/retry", json={"ids": [world.job()]})
                assert retried.json() == {"retried": 0}


@given(
    kind=st.sampled_from(["admin", "key", "user"]),
    scopes=st.sets(st.sampled_from(["publish", "admin"])),
    bound=st.sampled_from([None, "a", "b"]),
    target=st.sampled_from(["a", "b"]),
)
def test_the_publish_check_of_the_hot_path_agrees_with_the_table(
    kind: str, scopes: set[str], bound: str | None, target: str
) -> None:
    """Ingest asks ``Principal.can_publish_to`` per event (no table lookup
    on the hot path); it must say what the table says."""
    if kind == "admin":
        principal = Principal(kind="admin", scopes=frozenset({"admin", "publish"}))
    elif kind == "user":
        principal = Principal(kind="user", tenant_id=bound or "a")
    else:
        principal = Principal(kind="key", tenant_id=bound, scopes=frozenset(scopes), key_id="k")
    if kind == "key" and not scopes:
        return  # keys have at least one scope
    assert principal.can_publish_to(target) == may(principal, "events.publish", target)
