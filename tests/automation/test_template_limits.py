"""Templates are bounded in CPU and output for every template form: text
templates, single expressions (native values), and nested configurations
(one budget for all their strings). A template past a limit is a
TemplateError (422 in a dry run, a failed job with a reason), and a template
past a limit whatever the event is refused when it is saved."""

from __future__ import annotations

import time
from typing import Any

import pytest

from support import Admin, ServerProcess
from tidings.automation.templates import (
    MAX_OUTPUT_CHARS,
    TemplateError,
    check_value,
    event_context,
    render,
    render_value,
)
from tidings.errors import InvalidInput

CTX = event_context({"type": "t", "data": {"n": 3, "big": 10**9, "word": "ab", "xs": [1, 2]}})
ONE_MB = "'a' * 1000000"

# Each breaks a limit; all of them together must answer in well under a second.
# Native values that JSON cannot carry (as text they are fine: 10**90 prints).
NO_JSON_NUMBER = ["{{ 9**9**9 }}", "{{ 10**18 * 10**18 }}", "{{ 10 ** 10**9 }}", "{{ -(2**65) }}"]
HOSTILE = [
    "{{ 2**60000 }}",
    "{{ 10 ** (10**9) }}",
    "{{ 'a' * 10**9 }}",
    "{{ [1, 2] * 10**8 }}",
    "{{ ['a' * 1000000] * 1000 }}",  # few items, each huge
    "{{ range(10**9) | list }}",
    "{{ 'x' | center(10**9) }}",
    "{{ 'x'.ljust(10**9) }}",
    "{{ '%0999999999d' % 1 }}",
    "{{ '%*d' % (10**9, 1) }}",
    "{{ '{:>999999999}'.format(1) }}",
    "{{ '{:>{w}}'.format(1, w=10**9) }}",
    "{{ ('a' * 1000) | replace('', 'x' * 100000) }}",
    "{{ ('a' * 1000).replace('', 'x' * 100000) }}",
    f"{{{{ ({ONE_MB}) ~ ({ONE_MB}) }}}}",  # a single-expression concatenation
    f"{{{{ [{ONE_MB}, {ONE_MB}] | join }}}}",
    f"{{{{ 'b'.join([{ONE_MB}, {ONE_MB}]) }}}}",
    "{{ [1] * 1000000 }}",  # native, but its JSON is 3 MB
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "{% for c in 'a' * 100000 %}{% for d in 'a' * 100000 %}{% endfor %}{% endfor %}",
    "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(40) }}",
    "{% for i in range(100000) %}{{ 'x' * 100 }}{% endfor %}",  # output: 10 MB
    f"{{% set a = {ONE_MB} %}}{{% set b = a ~ a %}}{{% set c = b ~ b %}}{{{{ c }}}}",
    "{{ 'a' * data.big }}",  # depends on the event
]


@pytest.mark.parametrize("source", HOSTILE)
def test_every_form_is_bounded(source: str) -> None:
    started = time.monotonic()
    for attempt in (
        lambda: render_value(source, CTX, field="/x"),
        lambda: render_value({"deep": [{"s": source}]}, CTX, field="/config"),
        lambda: render(source + " ", CTX, field="/x"),  # never a single expression
    ):
        with pytest.raises(TemplateError) as refused:
            attempt()
        assert refused.value.status == 422 and refused.value.field.startswith(("/x", "/config"))
        assert "\n" not in refused.value.detail
    assert time.monotonic() - started < 5.0  # generous: unbounded forms take minutes or GBs


@pytest.mark.parametrize("source", NO_JSON_NUMBER)
def test_native_numbers_must_fit_json(source: str) -> None:
    """Jinja's ``**`` groups left: ``9**9**9`` is ``(9**9)**9``, 257 bits."""
    with pytest.raises(TemplateError) as refused:
        render_value({"n": source}, CTX)
    assert refused.value.field == "/n" and "out of range" in refused.value.detail
    assert render(source + " ", CTX).strip().lstrip("-").isdigit()


def test_one_budget_covers_a_whole_configuration() -> None:
    half = "{{ 'x' * 600000 }}"
    assert len(render_value(half, CTX)) == 600_000
    with pytest.raises(TemplateError) as refused:
        render_value({"subject": half, "body": [half]}, CTX, field="/action/config")
    assert refused.value.field == "/action/config/body/0"
    assert str(MAX_OUTPUT_CHARS) in refused.value.detail


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ data.n * 2 }}", 6),
        ("{{ 2**62 }}", 2**62),
        ("{{ data.xs | sum }}", 3),
        ("{{ 'ab' * 3 }}", "ababab"),
        ("{{ '%s-%05d' % (data.word, data.n) }}", "ab-00003"),
        ("{{ '{:>4}'.format(data.n) }}", "   3"),
        ("{{ data.word | center(6) }}", "  ab  "),
        ("{{ data.word ~ '-' ~ data.n }}", "ab-3"),
        ("{% for x in data.xs %}{{ x }},{% endfor %}", "1,2,"),
        ("{% for i in range(1000) %}{% endfor %}done", "done"),
        ("{{ ['a', 'b'] | join('+') }}", "a+b"),
        ("{{ 'a-b'.replace('-', '+') }}", "a+b"),
    ],
)
def test_ordinary_templates_still_render(source: str, expected: Any) -> None:
    assert render_value(source, CTX) == expected


@pytest.mark.parametrize(
    "source",
    ["{{ 9**9**9 }}", "{{ 'a' * 10**9 }}", "x{{ 'x' | center(10**9) }}", HOSTILE[-5]],
)
def test_templates_that_always_break_a_limit_are_refused_at_save(source: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        check_value({"body": ["ok", source]}, "/action/config")
    assert refused.value.field == "/action/config/body/1"


@pytest.mark.parametrize(
    "source", ["{{ 'a' * data.big }}", "{{ data.title + 1 }}", "Hi {{ data.name }}"]
)
def test_templates_that_depend_on_the_event_are_saved(source: str) -> None:
    check_value({"body": source}, "/action/config")


def _rule(tenant: str, title: str) -> dict[str, Any]:
    return {
        "name": "limits",
        "tenantId": tenant,
        "trigger": {"type": "course.completed"},
        "action": {
            "type": "send_notification",
            "config": {"audience": "user:u1", "title": title},
        },
        "retry": {"schedule": [0]},
    }


def _event(tenant: str, **data: Any) -> dict[str, Any]:
    return {
        "type": "course.completed",
        "tenantId": tenant,
        "data": {"courseId": "c1", "userId": "u1", "completedAt": "2026-11-22T10:00:00Z", **data},
    }


def test_dry_runs_and_saves_answer_422_never_500(server: ServerProcess, admin: Admin) -> None:
    tenant = admin.tenant()
    for source in ("{{ 9**9**9 }}", "{{ [1] * 1000000 }}", "{{ 'x' | center(10**9) }}"):
        for path in ("/api/admin/rules", "/api/admin/rules/test"):
            body = {"rule": _rule(tenant, source), "event": _event(tenant)}
            response = admin.http.post(
                path, json=_rule(tenant, source) if "test" not in path else body
            )
            assert response.status_code == 422, response.text
            assert response.json()["field"].endswith("/action/config/title")
    saved = admin.http.post("/api/admin/rules", json=_rule(tenant, "{{ 'a' * data.times }}"))
    assert saved.status_code == 201, saved.text
    dry = admin.http.post(
        f"/api/admin/rules/{saved.json()['id']}/test", json={"event": _event(tenant, times=10**9)}
    )
    assert dry.status_code == 422, dry.text
    assert "1048576" in dry.json()["detail"]


def test_a_job_past_a_limit_fails_with_the_reason(server: ServerProcess, admin: Admin) -> None:
    tenant = admin.tenant()
    saved = admin.http.post("/api/admin/rules", json=_rule(tenant, "{{ 'a' * data.times }}"))
    assert saved.status_code == 201, saved.text
    published = admin.publish(_event(tenant, times=10**9))
    assert published.status_code == 202, published.text
    deadline = time.monotonic() + 15
    found: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        found = admin.http.get("/api/admin/jobs", params={"ruleId": saved.json()["id"]}).json()[
            "items"
        ]
        if found and found[0]["status"] == "dead":
            break
        time.sleep(0.1)
    assert found and found[0]["status"] == "dead", found
    assert "template" in found[0]["lastError"] and "1048576" in found[0]["lastError"]
