"""Action templates: rendering over an event, the sandbox, native values."""

from __future__ import annotations

from typing import Any

import pytest

from tidings.automation.templates import (
    TemplateError,
    check_template,
    check_value,
    event_context,
    render,
    render_value,
)
from tidings.errors import InvalidInput

ENVELOPE: dict[str, Any] = {
    "id": "evt_1",
    "type": "qms.capa.created",
    "tenantId": "acme",
    "entityType": "capa",
    "entityId": "CAPA-7",
    "actor": {"userId": "u1", "name": "Ada"},
    "metadata": {"source": "qms"},
    "data": {"title": "Fix the pump", "score": 4.5, "count": 3, "open": True, "tags": ["a", "b"]},
}


@pytest.fixture
def ctx() -> dict[str, Any]:
    return event_context(ENVELOPE, tenant={"id": "acme", "name": "Acme"}, rule={"name": "r1"})


def test_renders_event_variables(ctx: dict[str, Any]) -> None:
    text = render(
        "{{ type }} {{ entityType }}/{{ entityId }} by {{ actor.name }} "
        "in {{ tenant.name }} ({{ tenantId }}): {{ data.title }} [{{ rule.name }}] "
        "{{ event.id }} {{ metadata.source }}",
        ctx,
    )
    assert text == (
        "qms.capa.created capa/CAPA-7 by Ada in Acme (acme): Fix the pump [r1] evt_1 qms"
    )
    assert ctx["now"].endswith("Z") and "T" in ctx["now"]


def test_no_autoescape_and_tojson(ctx: dict[str, Any]) -> None:
    assert render("<b>{{ '&' }}</b>", ctx) == "<b>&</b>"
    assert render("{{ data.tags | tojson }}", ctx) == '["a", "b"]'


def test_missing_values_render_empty(ctx: dict[str, Any]) -> None:
    assert render("[{{ data.missing.x.y }}]", ctx) == "[]"
    assert render("[{{ nothing.at.all }}]", ctx) == "[]"
    assert render("{{ data.missing or 'n/a' }}", ctx) == "n/a"


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ data.__class__ }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ data.update({'x': 1}) }}",
        "{{ data.tags.append(1) }}",
        "{{ 10 ** 100000 }}",
        "{{ 'x' * 100000000 }}",
        "{% for i in range(1000000) %}{% endfor %}",
        "{% set ns = namespace(x=3) %}{% for _ in range(40) %}{% set ns.x = ns.x * ns.x %}"
        "{% endfor %}",
        "{% set ns = namespace(s='ab') %}{% for _ in range(40) %}{% set ns.s = ns.s + ns.s %}"
        "{% endfor %}",
    ],
)
def test_sandbox_refuses(ctx: dict[str, Any], source: str) -> None:
    with pytest.raises(TemplateError) as caught:
        render(source, ctx)
    assert "\n" not in caught.value.detail
    assert isinstance(caught.value, InvalidInput)
    assert ctx["data"] == ENVELOPE["data"]  # nothing mutated


def test_runtime_errors_are_one_line(ctx: dict[str, Any]) -> None:
    with pytest.raises(TemplateError, match="ZeroDivisionError"):
        render("{{ 1 / 0 }}", ctx)
    with pytest.raises(TemplateError) as caught:
        render("{{ data.title + 1 }}", ctx)
    assert "\n" not in caught.value.detail
    with pytest.raises(TemplateError):
        render("{{ missing() }}", ctx)


def test_render_value_keeps_native_values(ctx: dict[str, Any]) -> None:
    config = {
        "score": "{{ data.score }}",
        "count": " {{ data.count + 1 }} ",
        "open": "{{- data.open -}}",
        "tags": "{{ data.tags }}",
        "actor": "{{ actor }}",
        "missing": "{{ data.missing.x }}",
        "text": "{{ data.count }} items",
        "two": "{{ data.count }}{{ data.count }}",
        "literal": "plain",
        "nested": {"list": ["{{ entityId }}", 7, None], "{{ key }}": "{{ data.title | upper }}"},
    }
    rendered = render_value(config, ctx)
    assert rendered == {
        "score": 4.5,
        "count": 4,
        "open": True,
        "tags": ["a", "b"],
        "actor": {"userId": "u1", "name": "Ada"},
        "missing": None,
        "text": "3 items",
        "two": "33",
        "literal": "plain",
        "nested": {"list": ["CAPA-7", 7, None], "{{ key }}": "FIX THE PUMP"},
    }
    rendered["tags"].append("c")  # a copy, not the event's own list
    assert ENVELOPE["data"]["tags"] == ["a", "b"]


def test_render_value_names_the_failing_string(ctx: dict[str, Any]) -> None:
    with pytest.raises(TemplateError) as caught:
        render_value({"a": [{"b": "{{ 1 / 0 }}"}]}, ctx, field="/action/config")
    assert caught.value.field == "/action/config/a/0/b"
    with pytest.raises(TemplateError):
        render_value("{{ ''.__class__ }}", ctx)


def test_syntax_errors_name_field_and_line() -> None:
    check_template("Hello {{ data.title }}", "/action/config/subject")
    with pytest.raises(InvalidInput) as caught:
        check_template("line one\nline two {{ data.title ", "/action/config/body")
    assert caught.value.field == "/action/config/body"
    assert caught.value.detail.startswith("template syntax error: ")
    assert caught.value.detail.endswith("(line 2)")
    with pytest.raises(InvalidInput, match=r"No filter named 'nope'.*\(line 1\)"):
        check_template("{{ x | nope }}", "/f")
    with pytest.raises(InvalidInput, match="64 KiB"):
        check_template("x" * (64 * 1024 + 1), "/f")


def test_check_value_names_the_pointer() -> None:
    check_value({"title": "{{ data.title }}", "n": 1, "list": ["{{ x }}"]}, "/action/config")
    with pytest.raises(InvalidInput) as caught:
        check_value({"data": {"ok": "{{ x }}", "title": "{% if %}", "a/b": "x"}}, "/action/config")
    assert caught.value.field == "/action/config/data/title"
    with pytest.raises(InvalidInput) as caught:
        check_value({"a/b": ["ok", "{{ }"]}, "")
    assert caught.value.field == "/a~1b/1"
