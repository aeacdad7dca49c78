"""The public names of ``tidings`` and ``tidings.sdk`` are exactly what we
mean to export (httpx's ``tests/test_exported_members.py``), and importing
the SDK loads none of the server."""

from __future__ import annotations

import json
import subprocess
import sys
import types

import pytest

import tidings
import tidings.sdk

TIDINGS_ALL = [
    "Settings",
    "Tidings",
    "TidingsApp",
    "TidingsError",
    "__version__",
    "create_hub",
    "load_settings",
]
SDK_ALL = [
    "AsyncTidingsClient",
    "BaseClient",
    "Conflict",
    "Forbidden",
    "InvalidInput",
    "MalformedJSON",
    "NotFound",
    "PayloadTooLarge",
    "RateLimited",
    "Subscriber",
    "TidingsClient",
    "TidingsError",
    "Unauthorized",
    "Unavailable",
    "is_control",
    "new_event_id",
]
# What the SDK may load of tidings: itself and the pure helpers it uses.
SDK_MODULES = {
    "tidings",
    "tidings.core",
    "tidings.core.ids",
    "tidings.core.pointers",
    "tidings.core.retry",
    "tidings.core.sse",
    "tidings.errors",
    "tidings.sdk",
    "tidings.sdk.client",
    "tidings.sdk.closing",
    "tidings.sdk.subscriber",
}
SERVER_LIBRARIES = [
    "alembic",
    "asyncpg",
    "fastapi",
    "jinja2",
    "orjson",
    "sqlalchemy",
    "starlette",
    "uvicorn",
]


def public_names(module: types.ModuleType) -> set[str]:
    """The module-level names that do not start with ``_``. Submodules are
    left out: importing ``tidings.sdk.client`` makes ``client`` an attribute
    of ``tidings.sdk`` (and ``import typing`` one of ``tidings``), which is
    how packages work, not an export."""
    names = {*vars(module), *dir(module)}
    return {
        name
        for name in names
        if not name.startswith("_") and not isinstance(getattr(module, name), types.ModuleType)
    }


@pytest.mark.parametrize(
    ("module", "expected"), [(tidings, TIDINGS_ALL), (tidings.sdk, SDK_ALL)], ids=["tidings", "sdk"]
)
def test_all_is_the_written_list(module: types.ModuleType, expected: list[str]) -> None:
    assert module.__all__ == expected
    assert expected == sorted(expected)
    for name in module.__all__:
        assert getattr(module, name) is not None, name  # every export resolves
    assert public_names(module) <= set(module.__all__)  # nothing public is left out


def test_lazy_names_are_the_real_ones() -> None:
    from tidings.config import Settings, load_settings
    from tidings.errors import TidingsError
    from tidings.http.app import TidingsApp, create_app
    from tidings.node import Tidings

    assert (tidings.Settings, tidings.load_settings) == (Settings, load_settings)
    assert (tidings.TidingsError, tidings.Tidings) == (TidingsError, Tidings)
    assert (tidings.create_hub, tidings.TidingsApp) == (create_app, TidingsApp)
    with pytest.raises(AttributeError, match="no_such_name"):
        tidings.no_such_name  # noqa: B018


def test_importing_the_sdk_loads_no_server_module() -> None:
    roots = sorted({"tidings", *SERVER_LIBRARIES})
    probe = (
        "import json, sys, tidings.sdk\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {roots})))"
    )
    loaded = json.loads(
        subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, check=True
        ).stdout
    )
    assert [m for m in loaded if not m.startswith("tidings")] == []
    assert set(loaded) <= SDK_MODULES, set(loaded) - SDK_MODULES
