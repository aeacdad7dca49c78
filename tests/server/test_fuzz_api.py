"""The HTTP API fuzzed from its own OpenAPI document (schemathesis), the
document's own promises (``tidings.http.apidoc``), and what the fuzz found.

The fuzz runs against a real ``tidings serve`` on SQLite over loopback, once
with the admin key and once with an ordinary user's JWT. Every operation
gets a positive and a negative pass (the admin also a pass aimed at a tenant
and user that exist), a fixed number of cases each, derandomized (the same
cases every run, so a failure reproduces), no shrinking, and a time budget.
Checks: no 5xx, and every answer conforms to the document (status codes,
content types, the ``Problem`` schema, the declared success schemas). Every
operation runs even when one fails; the test fails with the whole list.

The SSE streams (``GET /api/events`` and its aliases never end) are fuzzed
too: schemathesis reads an event stream for the request timeout in total
(``STREAM_READ_S``), then judges each frame against the declared frame
schema. The WebSocket is described in the document (a GET answering 101)
but not fuzzed: schemathesis speaks HTTP only (``tests/server/test_server_delivery.py``
covers it).
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from support import ADMIN_KEY, Admin, ServerProcess, running_server, unique
from tidings.http import apidoc
from tidings.http.problems import PROBLEM_SCHEMA

EXAMPLES = 8  # per operation and pass
STREAM_EXAMPLES = 4  # each stream case is read for STREAM_READ_S
BUDGET_S = 100.0  # per credential run (~35 s on an idle 2-core machine); overrun fails
STREAM_READ_S = 0.25
# The admin's third pass aims at a tenant and user that exist, to get past
# the 404s into the handlers (its own: the user pass keeps its tenant).
TARGET = {"tenant_id": "fuzz-target", "user_id": "target-user"}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(tmp_path_factory.mktemp("fuzz")) as server:
        yield server


@pytest.fixture(scope="module")
def credentials(fuzz_server: ServerProcess) -> dict[str, str]:
    admin = Admin(fuzz_server.url)
    try:
        token = admin.user(admin.tenant("fuzz"), "fuzz-user", "member")
        admin.user(admin.tenant(TARGET["tenant_id"]), TARGET["user_id"], "member")
    finally:
        admin.close()
    return {"admin": ADMIN_KEY, "user": token}


def _operations(url: str) -> list[Any]:
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    return [op for op in operations if "101" not in op.definition.raw["responses"]]


Pass = tuple[Any, GenerationMode, dict[str, str]]  # operation, mode, fixed path parameters


def _passes(operations: list[Any], who: str) -> list[Pass]:
    """Positive passes of every operation first, then negative ones, then
    the admin's aimed ones: a budget overrun loses the least."""
    passes: list[Pass] = [(op, GenerationMode.POSITIVE, {}) for op in operations]
    passes += [(op, GenerationMode.NEGATIVE, {}) for op in operations]
    for op in operations if who == "admin" else []:
        fixed = {k: v for k, v in TARGET.items() if f"{{{k}}}" in op.path}
        if fixed:
            passes.append((op, GenerationMode.POSITIVE, fixed))
    return passes


def _fuzz(operation: Any, mode: GenerationMode, path: dict[str, str], token: str) -> str | None:
    """One pass over ``operation``: None, or what failed."""
    session = requests.Session()
    # an event stream is read until the timeout passes in total, then judged
    streams = "text/event-stream" in str(operation.definition.raw.get("responses", {}))
    timeout = STREAM_READ_S if streams else 10.0

    @settings(
        max_examples=STREAM_EXAMPLES if streams else EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: bounded time
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=path or None))
    def run(case: Any) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        response = case.call(session=session, headers=headers, timeout=timeout)
        case.validate_response(response, checks=CHECKS)

    try:
        run()
    except Unsatisfiable:
        return None  # nothing to negate: the operation takes no input
    except (Exception, BaseExceptionGroup) as exc:  # schemathesis raises a group
        return f"{operation.label} [{mode.value}{' ' + str(path) if path else ''}]: {exc}"
    return None


@pytest.mark.parametrize("who", ["admin", "user"])
def test_api_conforms_to_its_openapi(
    fuzz_server: ServerProcess, credentials: dict[str, str], who: str
) -> None:
    failures: dict[str, str] = {}
    skipped: list[str] = []
    deadline = time.monotonic() + BUDGET_S
    for operation, mode, path in _passes(_operations(fuzz_server.url), who):
        if time.monotonic() > deadline:
            skipped.append(f"{operation.label} [{mode.value}]")
        elif operation.label not in failures:
            failure = _fuzz(operation, mode, path, credentials[who])
            if failure is not None:
                failures[operation.label] = failure
    assert not failures, "\n\n".join(failures.values())
    assert not skipped, f"the time budget ran out before: {skipped}"


# -- the document's own promises (no server: the app builds it in-process) ----


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from tidings.config import Settings
    from tidings.http.app import create_app

    database = tmp_path_factory.mktemp("doc") / "doc.db"
    return create_app(Settings(database_url=f"sqlite:///{database}")).api.openapi()


def _each_operation(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            yield method, path, operation


def test_every_error_answer_is_a_declared_problem(document: dict[str, Any]) -> None:
    assert "HTTPValidationError" not in orjson.dumps(document).decode()
    assert document["components"]["schemas"]["Problem"] == PROBLEM_SCHEMA
    probes = {("get", "/healthz"), ("get", "/readyz")}
    for method, path, operation in _each_operation(document):
        errors = {s: r for s, r in operation["responses"].items() if int(s) >= 400}
        if (method, path) == ("get", "/readyz"):
            assert set(errors) == {"503"}  # its own JSON, not a problem
            continue
        if (method, path) == ("get", "/ws/events"):
            assert set(errors) == {"403"}  # a refused handshake: no body
            assert "content" not in errors["403"]
            continue
        if (method, path) not in probes:
            assert any(int(s) < 500 for s in errors), f"{method} {path}: no 4xx problem"
        for status, response in errors.items():
            assert response["content"] == {
                "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
            }, f"{method} {path} {status}"


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("post", "/api/events", {"400", "401", "403", "409", "413", "415", "422", "429", "503"}),
        ("post", "/api/events/batch", {"400", "401", "413", "415", "422", "429", "503"}),
        ("get", "/api/events", {"401", "403", "422", "429", "503"}),
        ("get", "/qms/events", {"401", "403", "422", "429", "503"}),
        ("put", "/api/admin/tenants/{tenant_id}", {"400", "401", "403", "413", "422"}),
        ("get", "/api/admin/jobs/{job_id}", {"401", "403", "404", "422"}),
        ("post", "/api/inbound/{name}", {"400", "401", "404", "413", "422"}),
        ("get", "/metrics", {"401"}),
    ],
)
def test_operations_declare_the_problems_they_answer(
    document: dict[str, Any], method: str, path: str, expected: set[str]
) -> None:
    declared = set(document["paths"][path][method]["responses"])
    assert expected <= declared, expected - declared


def test_every_operation_declares_its_security(document: dict[str, Any]) -> None:
    """Which kinds exactly: ``tests/test_openapi_document.py`` (against the table)."""
    schemes = document["components"]["securitySchemes"]
    for name in ("adminKey", "apiKey", "userToken", "metricsToken"):
        assert schemes[name] == {**schemes[name], "type": "http", "scheme": "bearer"}
    public = {("get", "/healthz"), ("get", "/readyz"), ("post", "/api/inbound/{name}")}
    for method, path, operation in _each_operation(document):
        security = operation["security"]
        if (method, path) in public:
            assert security == [], f"{method} {path}"
        elif (method, path) == ("get", "/metrics"):
            assert security == [{}, {"metricsToken": []}]  # a token only when configured
        else:
            assert security, f"{method} {path}"
            assert all(set(r) <= {"adminKey", "apiKey", "userToken"} for r in security)


def test_hand_written_declarations_name_real_operations(document: dict[str, Any]) -> None:
    """A renamed route must not leave its parameters, statuses or schemas
    declared on a path that no longer exists."""
    tables = (
        apidoc.QUERY_PARAMETERS,
        apidoc.SUCCESS_STATUSES,
        apidoc.PUBLIC,
        apidoc.ONLY_ERRORS,
    )
    operations = {(m, p) for m, p, _ in _each_operation(document)}
    for table in tables:
        assert set(table) <= operations, set(table) - operations
    assert apidoc.INBOUND in operations


def test_handler_read_parameters_are_declared(document: dict[str, Any]) -> None:
    history = document["paths"]["/api/events/log"]["get"]["parameters"]
    assert {p["name"] for p in history} >= {"types", "limit", "cursor", "order", "tenantId"}
    stream = document["paths"]["/api/events"]["get"]["parameters"]
    assert {(p["name"], p["in"]) for p in stream} >= {
        ("lastEventId", "query"),
        ("Last-Event-ID", "header"),
        ("ticket", "query"),
    }


# -- what the fuzz found, pinned over HTTP on SQLite and PostgreSQL ---------------

WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"a-fuzz-secret-of-32-bytes-length").decode()


@pytest.mark.parametrize(
    "secret", ["whsec_\u00e9t\u00e9-secret", "s\u00e9cret-\u2603-xyz", "\u00b2" * 9]
)
def test_an_unusable_webhook_secret_is_refused_at_save(admin: Admin, secret: str) -> None:
    name = unique("hook")
    body = {"secret": secret, "scheme": "standard-webhooks"}
    response = admin.http.put(f"/api/admin/integrations/{name}", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "/secret"
    call = httpx.post(f"{admin.url}/api/inbound/{name}", json={"type": "X"})
    assert call.status_code == 404  # nothing stored


def _hmac_headers(stamp: bytes, signature: bytes) -> dict[str, bytes]:
    return {"X-Timestamp": stamp, "X-Signature": signature}


def _standard_headers(stamp: bytes, signature: bytes) -> dict[str, bytes]:
    return {"webhook-id": b"msg_1", "webhook-timestamp": stamp, "webhook-signature": signature}


NOW = str(int(time.time())).encode()


@pytest.mark.parametrize("scheme", ["hmac-sha256", "standard-webhooks"])
@pytest.mark.parametrize(
    ("stamp", "signature"),
    [
        pytest.param("\u00b2".encode("latin-1"), b"sha256=00", id="unicode-digit"),
        pytest.param("\u00b9\u00b2\u00b3".encode("latin-1"), b"v1,AAAA", id="unicode-digits"),
        pytest.param("\uff11\uff12".encode(), b"v1,AAAA", id="fullwidth-utf8"),
        pytest.param(b"9" * 40, b"sha256=00", id="past-64-bits"),
        pytest.param(NOW, "sha256=\u00e9\u00e8".encode("latin-1"), id="non-ascii-hmac"),
        pytest.param(NOW, "v1,\u00e9\u00e8".encode("latin-1"), id="non-ascii-v1"),
        pytest.param(b"", b"", id="empty"),
    ],
)
def test_a_hostile_signature_header_is_a_401(
    admin: Admin, scheme: str, stamp: bytes, signature: bytes
) -> None:
    name = unique("hook")
    body = {"secret": WEBHOOK_SECRET, "scheme": scheme}
    admin.http.put(f"/api/admin/integrations/{name}", json=body).raise_for_status()
    make = _hmac_headers if scheme == "hmac-sha256" else _standard_headers
    response = httpx.post(
        f"{admin.url}/api/inbound/{name}",
        content=b'{"type": "X", "tenantId": "t"}',
        headers={"content-type": "application/json", **make(stamp, signature)},
    )
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"


# -- Last-Event-ID, where the streams parse it ---------------------------------------


LAST_IDS = st.one_of(
    st.integers(0, 2**70).map(str),
    st.text(st.characters(min_codepoint=32, max_codepoint=255), min_size=1, max_size=24),
    st.sampled_from(["\u00b2", "\u00b9\u00b2", "+5", "-1", "1_000", " 7", "0x10", "9" * 30]),
)


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(value=LAST_IDS, in_header=st.booleans())
def test_any_last_event_id_opens_the_stream_or_is_a_422(
    fuzz_server: ServerProcess, value: str, in_header: bool
) -> None:
    # what HTTP can carry in a header: no DEL, no white space at either end
    assume(not in_header or (value == value.strip() and "\x7f" not in value))
    request: dict[str, Any] = (
        {"headers": {"Last-Event-ID": value.encode("latin-1")}}
        if in_header
        else {"params": {"lastEventId": value}}
    )
    headers = {"Authorization": f"Bearer {ADMIN_KEY}", **request.pop("headers", {})}
    with httpx.stream(
        "GET", f"{fuzz_server.url}/api/events", headers=headers, timeout=10, **request
    ) as response:
        if response.status_code == 200:
            assert response.headers["content-type"].startswith("text/event-stream")
            return
        response.read()
    assert response.status_code == 422, (value, response.text)
    assert response.json()["field"] in ("Last-Event-ID", "lastEventId")


# -- lone surrogates in free-form JSON (found by this fuzz) ----------------------------


@pytest.mark.parametrize(
    ("path", "body", "pointer"),
    [
        pytest.param(
            "/api/admin/tenants/{t}",
            b'{"name": "a", "settings": {"\\ud800": 1}}',
            "/settings",
            id="settings-key",
        ),
        pytest.param(
            "/api/admin/tenants/{t}",
            b'{"name": "a", "settings": {"k": "\\udfff"}}',
            "/settings/k",
            id="settings-value",
        ),
        pytest.param(
            "/api/admin/integrations/{t}",
            b'{"secret": "whsec_abcdefgh", "mappings": {"\\ud800": {"transition": "SUSPENDED"}}}',
            "/mappings",
            id="mapping-key",
        ),
    ],
)
def test_a_lone_surrogate_in_a_body_is_a_422(
    admin: Admin, path: str, body: bytes, pointer: str
) -> None:
    url = path.format(t=unique("sur"))
    response = admin.http.put(url, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    assert response.json()["field"].startswith(pointer)
    assert admin.http.get(url).status_code in (404, 405)  # nothing stored
