"""The catalog's answers: event types, their versions, the exports."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class Change(BaseModel):
    pointer: str
    kind: str
    detail: str
    backward: bool
    forward: bool


class Compatibility(BaseModel):
    compatible: bool
    backward: bool
    forward: bool
    changes: list[Change]


class _TypeBase(BaseModel):
    type: str
    title: str
    module: str
    category: str
    group: str
    description: dict[str, str]
    entityType: str | None
    action: str | None
    audiences: list[str]
    sensitive: dict[str, str] = Field(description="payload path -> permission to see it")
    active: bool
    source: str = Field(description="pack:<name> or tenant:<id>")
    latestVersion: int
    schema_: str = Field(alias="schema", description="id of the latest payload schema")


class TypeSummary(_TypeBase):
    versions: list[int]


class Version(BaseModel):
    version: int
    schema_: str = Field(alias="schema")
    jsonSchema: dict[str, Any] | bool
    fields: str | None = Field(default=None, description="the fields shorthand it was given in")
    compatibility: Compatibility | None = Field(default=None, description="with the version before")


class TypeDetail(_TypeBase):
    versions: list[Version]


class CatalogList(BaseModel):
    tenantId: str | None
    count: int
    items: list[TypeSummary]


class BrokenType(BaseModel):
    type: str
    error: str = Field(description="why the stored type no longer builds")


class TenantTypes(BaseModel):
    tenantId: str
    items: list[TypeDetail | BrokenType]


class NewVersion(BaseModel):
    type: str
    version: int
    schema_: str = Field(alias="schema")
    compatibility: Compatibility
    eventType: TypeDetail


class AsyncApiDocument(BaseModel):
    """An AsyncAPI 3.0 document (https://www.asyncapi.com/docs/reference/specification/v3.0.0)."""

    asyncapi: str
    info: dict[str, Any]


class SchemaBundle(BaseModel):
    """A JSON Schema (2020-12) bundle: every payload schema under ``$defs``."""
