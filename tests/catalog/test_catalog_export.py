"""The AsyncAPI 3.0 export, validated against the official AsyncAPI 3.0.0
JSON Schema (vendored in tests/data, see its README), and the JSON Schema
bundle; from the core, over HTTP per tenant, and from the CLI."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft7Validator, Draft202012Validator
from typer.testing import CliRunner

from schema_strategies import valid
from support import Admin, ServerProcess, bearer
from tidings.catalog import load_catalog
from tidings.cli.main import app
from tidings.core.export import asyncapi_document, schema_bundle
from tidings.core.validation import FORMAT_CHECKER

DATA = Path(__file__).parents[1] / "data"
CATALOG = load_catalog()


@cache
def asyncapi_validator() -> Draft7Validator:
    schema = json.loads((DATA / "asyncapi-3.0.0.json").read_text(encoding="utf-8"))
    assert schema["$id"] == "http://asyncapi.com/definitions/3.0.0/asyncapi.json"
    return Draft7Validator(schema)


def assert_valid_asyncapi(document: dict[str, Any]) -> None:
    errors = sorted(asyncapi_validator().iter_errors(document), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message[:200]}" for e in errors[:5]]


def test_the_core_export_is_valid_asyncapi_3() -> None:
    document = asyncapi_document(CATALOG, title="Tidings", version="0.1.0")
    assert document["asyncapi"] == "3.0.0"
    assert_valid_asyncapi(document)
    messages = document["components"]["messages"]
    assert set(messages) == {t.name for t in CATALOG}
    assert set(document["channels"]["events"]["messages"]) == set(messages)
    car = messages["qms.car.updated"]
    data = car["payload"]["allOf"][1]["properties"]["data"]
    assert data == {
        "anyOf": [
            {"$ref": "#/components/schemas/qms.car.updated.v1"},
            {"$ref": "#/components/schemas/qms.car.updated.v2"},
        ]
    }
    schemas = document["components"]["schemas"]
    assert schemas["TICKET_CREATED.v1"]["title"] == schemas["ticket.created.v1"]["title"]
    assert schemas["ON_TENANT_ARCHIVED.v1"]["title"] == "payload.OnTenantArchived.v1"
    assert messages["ON_TENANT_ARCHIVED"]["x-tidings"]["description"]["ar"]


def test_the_validator_does_reject_broken_documents() -> None:
    document = asyncapi_document(CATALOG, title="Tidings", version="0.1.0")
    for breaks in (
        lambda d: d["operations"]["deliverEvents"].update(action="shout"),
        lambda d: d["components"]["messages"]["TICKET_CREATED"].update(colour="red"),
        lambda d: d["components"]["schemas"]["TICKET_CREATED.v1"].update(type=5),
        lambda d: d["servers"]["tidings"].pop("host"),
    ):
        broken = copy.deepcopy(document)
        breaks(broken)
        assert list(asyncapi_validator().iter_errors(broken)), breaks


def test_json_schema_bundle() -> None:
    bundle = schema_bundle(CATALOG, catalog_id="shipped")
    Draft202012Validator.check_schema(bundle)
    assert len(bundle["$defs"]) == sum(len(t.versions) for t in CATALOG)
    assert bundle["$defs"]["PAYMENT_APPLIED.v1"]["title"] == "payload.PaymentApplied.v1"


KEYS = sorted(schema_bundle(CATALOG, catalog_id="shipped")["$defs"])


@settings(max_examples=60, deadline=None)
@given(key=st.sampled_from(KEYS), data=st.data())
def test_bundle_schemas_accept_catalog_valid_payloads(key: str, data: Any) -> None:
    bundle = schema_bundle(CATALOG, catalog_id="shipped")
    schema = bundle["$defs"][key]
    payload = data.draw(
        valid({k: v for k, v in schema.items() if k not in ("title", "description")})
    )
    assert Draft202012Validator(schema, format_checker=FORMAT_CHECKER).is_valid(payload)


def test_tenant_asyncapi_over_http(server: ServerProcess, admin: Admin) -> None:
    tenant = admin.tenant()
    created = admin.http.post(
        f"/api/admin/catalog/{tenant}/types",
        json={
            "name": "acme.crate.packed",
            "description": {"en": "Crate packed", "ar": "تم تغليف الصندوق"},
            "audiences": ["permission:acme.read"],
            "fields": "crateId, items[{sku, qty:integer}], packedAt",
        },
    )
    assert created.status_code == 201, created.text
    token = admin.user(tenant, "dev", "member")
    response = httpx.get(f"{server.url}/api/catalog/asyncapi.json", headers=bearer(token))
    assert response.status_code == 200
    document = response.json()
    assert_valid_asyncapi(document)
    assert "acme.crate.packed" in document["components"]["messages"]
    assert document["servers"]["tidings"]["host"] == f"127.0.0.1:{server.port}"
    assert tenant in document["info"]["title"]
    shipped = admin.http.get("/api/catalog/asyncapi.json").json()
    assert "acme.crate.packed" not in shipped["components"]["messages"]
    assert_valid_asyncapi(shipped)
    bundle = httpx.get(f"{server.url}/api/catalog/schemas.json", headers=bearer(token)).json()
    Draft202012Validator.check_schema(bundle)
    assert "acme.crate.packed.v1" in bundle["$defs"]


def test_cli_export(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "asyncapi.json"
    result = runner.invoke(app, ["catalog", "export", "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert_valid_asyncapi(json.loads(out.read_text(encoding="utf-8")))
    result = runner.invoke(app, ["catalog", "export", "--format", "jsonschema"])
    assert result.exit_code == 0
    Draft202012Validator.check_schema(json.loads(result.stdout))
    result = runner.invoke(app, ["catalog", "export", "--format", "yaml"])
    # Typer's one error line naming the choices (its wording is click's)
    assert result.exit_code == 2
    error = result.output.strip().splitlines()[-1]
    assert error.startswith("Error:") and all(
        word in error for word in ("'yaml'", "'asyncapi'", "'jsonschema'")
    ), result.output


@pytest.mark.parametrize("name", ["ticket.created", "TICKET_CREATED"])
def test_shared_schema_names_stay_distinct(name: str) -> None:
    document = asyncapi_document(CATALOG, title="t", version="1")
    ref = document["components"]["messages"][name]["payload"]["allOf"][1]["properties"]["data"]
    assert ref == {"$ref": f"#/components/schemas/{name}.v1"}
