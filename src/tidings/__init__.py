"""Tidings: a self-hosted, multi-tenant domain-event hub.

Importing this package is cheap: the server's names (:class:`Tidings`,
:class:`Settings`, :func:`load_settings`, :class:`TidingsError`, and
:func:`create_hub` / :class:`TidingsApp` for embedding the hub in a host
app) load on first use (PEP 562), so ``import tidings.sdk`` never pulls the
server in (``tests/sdk/test_exported_members.py`` pins both).
"""

import importlib
import typing

__version__ = "0.1.0"

__all__ = [
    "Settings",
    "Tidings",
    "TidingsApp",
    "TidingsError",
    "__version__",
    "create_hub",
    "load_settings",
]

# Where each lazily loaded name lives.
_LAZY = {
    "Settings": "tidings.config",
    "Tidings": "tidings.node",
    "TidingsApp": "tidings.embed",
    "create_hub": "tidings.embed",
    "TidingsError": "tidings.errors",
    "load_settings": "tidings.config",
}

if typing.TYPE_CHECKING:
    from tidings.config import Settings, load_settings
    from tidings.embed import TidingsApp, create_hub
    from tidings.errors import TidingsError
    from tidings.node import Tidings
else:  # hidden from type checkers, which would otherwise accept any name

    def __getattr__(name: str) -> object:
        module = _LAZY.get(name)
        if module is None:
            raise AttributeError(f"module 'tidings' has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value  # later lookups skip this function
        return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
