"""Type patterns (stream filters and rule triggers): one linear matcher,
agreeing with glob semantics, bounded in count and length."""

from __future__ import annotations

import re
import time

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from support import Admin, ServerProcess, sse
from tidings.core.conditions import compile_conditions
from tidings.core.patterns import MAX_PATTERN_CHARS, MAX_PATTERNS, TypeFilter, compile_pattern
from tidings.core.triggers import RuleTrigger
from tidings.errors import InvalidInput

PATHOLOGICAL = [
    "*" * 13 + "Z",
    "*" * (MAX_PATTERN_CHARS - 1) + "Z",
    "a*" * 40 + "Z",
    "?*" * 60 + "Z",
    "*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b",
]


def _reference(pattern: str) -> re.Pattern[str]:
    """The semantics: ``*`` any run, ``?`` one character (a backtracking
    regex, fine on small inputs)."""
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(body, re.DOTALL)


def _trigger(pattern: str) -> RuleTrigger:
    return RuleTrigger("r1", None, 0, pattern, compile_conditions(None))


@settings(max_examples=1500, deadline=None)
@given(
    pattern=st.text(alphabet="ab.*?", min_size=1, max_size=10),
    name=st.text(alphabet="ab.", max_size=12),
)
def test_the_matcher_agrees_with_glob_semantics(pattern: str, name: str) -> None:
    expected = _reference(pattern).fullmatch(name) is not None
    assert compile_pattern(pattern).matches(name) is expected
    assert TypeFilter((pattern,)).matches(name) is expected
    assert _trigger(pattern).matches_type(name) is expected  # rule triggers: same matcher


@settings(max_examples=300, deadline=None)
@given(patterns=st.lists(st.text(alphabet="ab.*?", min_size=1, max_size=6), max_size=5))
def test_a_filter_matches_when_any_pattern_does(patterns: list[str]) -> None:
    type_filter = TypeFilter(tuple(patterns))
    for name in ("", "a", "ab", "a.b", "ba.ab", "aaa.bbb"):
        expected = not patterns or any(_reference(p).fullmatch(name) for p in patterns)
        assert type_filter.matches(name) is bool(expected)
        assert type_filter.matches(name) is bool(expected)  # the remembered answer


@pytest.mark.parametrize("pattern", PATHOLOGICAL)
def test_pathological_patterns_match_in_linear_time(pattern: str) -> None:
    """Names far longer than any event type: the old backtracking regex took
    seconds on 25 characters; this bound is generous, not a benchmark."""
    started = time.monotonic()
    for length in (25, 128, 10_000):
        assert not compile_pattern(pattern).matches("a" * length)
        assert not TypeFilter((pattern,)).matches("a" * length + "Y")
    assert time.monotonic() - started < 2.0


@pytest.mark.parametrize(
    "text",
    [
        ",".join(f"t{i}.*" for i in range(MAX_PATTERNS + 1)),  # too many
        "a" * (MAX_PATTERN_CHARS + 1),  # too long
        "*" * (MAX_PATTERN_CHARS + 1),
        "qms.*;DROP",  # outside the alphabet
        "qms.(a+)+",
        "x" * 100_000,
    ],
)
def test_filters_are_bounded(text: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        TypeFilter.parse(text)
    assert refused.value.field == "types"


def _long_type(admin: Admin, tenant: str) -> str:
    name = "acme.very.long.event.name.recorded"
    created = admin.http.post(
        f"/api/admin/catalog/{tenant}/types",
        json={
            "name": name,
            "description": "Recorded",
            "audiences": ["permission:widgets.read"],
            "fields": "x?",
        },
    )
    assert created.status_code == 201, created.text
    return name


@pytest.mark.asyncio
async def test_backtracking_filters_do_not_block_the_hub(
    server: ServerProcess, admin: Admin
) -> None:
    tenant = admin.tenant()
    name = _long_type(admin, tenant)
    admin.role("reader", ["widgets.read"], tenant_id=tenant)
    token = admin.user(tenant, "reader", "reader")
    hostile = [{"types": p} for p in PATHOLOGICAL[:3]]
    async with (
        sse(server.url, token, params=hostile[0]),
        sse(server.url, token, params=hostile[1]),
        sse(server.url, token, params=hostile[2]),
        sse(server.url, token, params={"types": "acme.*.recorded"}) as wanted,
    ):
        started = time.monotonic()
        for _ in range(3):
            response = admin.publish({"type": name, "tenantId": tenant, "data": {}})
            assert response.status_code == 202, response.text
        assert len(await wanted.events(3)) == 3
        for params in hostile:
            history = admin.http.get("/api/events/log", params={**params, "tenantId": tenant})
            assert history.status_code == 200 and history.json()["items"] == []
        assert time.monotonic() - started < 5.0  # was ~10 s per request


@pytest.mark.parametrize(
    "types", [",".join(["a.*"] * (MAX_PATTERNS + 1)), "b" * (MAX_PATTERN_CHARS + 1), "a(b)"]
)
def test_bad_filters_are_problems_over_http(
    server: ServerProcess, admin: Admin, types: str
) -> None:
    for path in ("/api/events/log", "/api/events"):
        response = httpx.get(
            f"{server.url}{path}", params={"types": types}, headers=admin.http.headers
        )
        assert response.status_code == 422, response.text
        assert response.json()["field"] == "types"
