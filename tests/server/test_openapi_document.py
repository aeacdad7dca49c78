"""The OpenAPI document of a live server is a contract clients can be
generated from (issue 13, item 5): walked operation by operation, it fails
on any operation without a success schema, without problem answers for its
errors, or without security, and on any ``$ref`` that does not resolve.
Security is checked against ``tidings.access.OPERATIONS`` (the one table),
and ``/docs`` and its packaged assets are served without any CDN."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from support import ServerProcess, running_server
from tidings.http import apidoc
from tidings.http.models import ACCESS_KEY
from tidings.services.access import OPERATIONS, Kind

PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
SWAGGER_DIR = Path(apidoc.__file__).resolve().parent.parent / "static" / "swagger"
# The credential kinds a security requirement admits (apiKey by its roles).
ADMITS: dict[str, frozenset[Kind]] = {
    apidoc.ADMIN_KEY: frozenset({Kind.BOOTSTRAP}),
    apidoc.USER_TOKEN: frozenset({Kind.USER}),
}
KEY_ROLES: dict[tuple[str, ...], frozenset[Kind]] = {
    (): frozenset({Kind.GLOBAL_ADMIN, Kind.TENANT_ADMIN, Kind.PUBLISH}),
    ("admin",): frozenset({Kind.GLOBAL_ADMIN, Kind.TENANT_ADMIN}),
    ("admin", "global"): frozenset({Kind.GLOBAL_ADMIN}),
}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(tmp_path_factory.mktemp("openapi")) as server:
        yield server


@pytest.fixture(scope="module")
def document(live: ServerProcess) -> dict[str, Any]:
    response = httpx.get(f"{live.url}/openapi.json", timeout=10)
    response.raise_for_status()
    return dict(response.json())


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            yield f"{method.upper()} {path}", operation


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def _resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for token in ref[2:].split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and token in node, ref
        node = node[token]
    return node


def _success_problems(label: str, operation: dict[str, Any]) -> list[str]:
    """What ``operation`` lacks: a success schema, or a problem for each error."""
    responses = operation["responses"]
    missing = []
    successes = {s: r for s, r in responses.items() if s.startswith("2") or s == "101"}
    if not successes:
        missing.append(f"{label}: no success answer")
    for status, response in successes.items():
        if status == "204":
            continue  # no content, by definition
        schemas = [m.get("schema") for m in response.get("content", {}).values()]
        if not schemas or not all(schemas):
            missing.append(f"{label} {status}: no success schema")
    websocket = "101" in responses
    errors = {s: r for s, r in responses.items() if s[0] in "45"}
    if not websocket and label != "GET /healthz" and not errors:
        missing.append(f"{label}: no error answers")
    for status, response in errors.items():
        content = response.get("content")
        if websocket or (label == "GET /readyz" and status == "503"):
            continue  # a refused handshake has no body; readiness answers its own JSON
        if content != PROBLEM:
            missing.append(f"{label} {status}: not the Problem schema: {content}")
    return missing


def test_every_operation_has_a_success_schema_and_problem_errors(
    document: dict[str, Any],
) -> None:
    missing = [m for label, op in _operations(document) for m in _success_problems(label, op)]
    assert not missing, "\n".join(missing)


def test_every_ref_resolves(document: dict[str, Any]) -> None:
    refs = set(_refs(document))
    assert "#/components/schemas/Envelope" in refs  # the streams' frames
    for ref in sorted(refs):
        assert isinstance(_resolve(document, ref), dict), ref


def _admitted(requirement: dict[str, list[str]]) -> frozenset[Kind]:
    ((scheme, roles),) = requirement.items()
    if scheme == apidoc.API_KEY:
        return KEY_ROLES[tuple(roles)]
    assert not roles, requirement
    return ADMITS[scheme]


def test_security_admits_exactly_the_kinds_the_table_allows(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    for name in (apidoc.ADMIN_KEY, apidoc.API_KEY, apidoc.USER_TOKEN):
        assert schemes[name]["type"] == "http" and schemes[name]["scheme"] == "bearer"
        assert schemes[name]["bearerFormat"] and schemes[name]["description"]
    for label, operation in _operations(document):
        method, path = label.split(" ")
        security = operation.get("security")
        assert security is not None, f"{label}: no security"
        if (method.lower(), path) in apidoc.PUBLIC:
            assert security == apidoc.PUBLIC[(method.lower(), path)], label
            continue
        assert all(name in schemes for requirement in security for name in requirement)
        allowed = frozenset().union(*(OPERATIONS[o] for o in operation[ACCESS_KEY]))
        admitted = frozenset().union(*(_admitted(r) for r in security))
        assert admitted == allowed, (label, security, sorted(allowed))


@pytest.mark.parametrize(
    ("label", "names"),
    [
        ("GET /api/events/log", {"types", "limit", "cursor", "order", "since", "tenantId"}),
        ("GET /api/admin/jobs", {"status", "limit", "before", "ruleId", "tenantId"}),
        ("GET /api/admin/api-keys", {"tenantId", "revoked"}),
        ("GET /api/notifications", {"unread", "limit", "cursor"}),
        ("GET /ws/events", {"types", "lastEventId", "Last-Event-ID", "ticket", "tenantId"}),
    ],
)
def test_query_parameters_are_declared(
    document: dict[str, Any], label: str, names: set[str]
) -> None:
    method, path = label.split(" ")
    declared = {p["name"] for p in document["paths"][path][method.lower()]["parameters"]}
    assert names <= declared, names - declared


def test_the_streams_describe_their_frames(document: dict[str, Any]) -> None:
    sse = document["paths"]["/api/events"]["get"]["responses"]["200"]["content"]
    frame = sse["text/event-stream"]["schema"]
    assert frame["properties"]["data"]["contentSchema"]["oneOf"] == [
        {"$ref": "#/components/schemas/Envelope"},
        {"$ref": "#/components/schemas/StreamControl"},
    ]
    websocket = document["paths"]["/ws/events"]["get"]
    assert set(websocket["responses"]) == {"101", "403"}
    assert "4003" in websocket["description"]  # the close codes are documented


def test_docs_load_swagger_ui_from_tidings_itself(live: ServerProcess) -> None:
    page = httpx.get(f"{live.url}/docs", timeout=10)
    assert page.status_code == 200
    assert "/static/swagger/swagger-ui-bundle.js" in page.text
    assert "cdn" not in page.text.lower() and "https://" not in page.text
    for name in ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"):
        asset = httpx.get(f"{live.url}/static/swagger/{name}", timeout=10)
        assert asset.status_code == 200, name
        assert asset.content == (SWAGGER_DIR / name).read_bytes()
    assert (SWAGGER_DIR / "VERSION").read_text().startswith("5.")
    assert "Apache License" in (SWAGGER_DIR / "LICENSE").read_text()
    assert httpx.get(f"{live.url}/redoc", timeout=10).status_code == 404  # not served
