"""Finding host actions: plugins a server loads at start.

A plugin is a callable ``register(tidings)`` that adds actions and jobs
(``tidings.register_action(...)``, ``tidings.register_job(...)``: the
:class:`PluginHost`, all a plugin may do at registration). It is called
once the node is fully built (rule book and worker exist); what an action
may use when it runs is its :class:`~tidings.automation.actions.ActionContext`.
A server loads every ``tidings.plugins`` entry point of the installed packages and
every module named in the ``plugins`` setting (``TIDINGS_PLUGINS=
myapp.tidings_actions``), calling its ``register``.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Sequence
from importlib.metadata import entry_points
from typing import Any, Protocol

from tidings.errors import InvalidInput

log = logging.getLogger("tidings.plugins")
ENTRY_POINT_GROUP = "tidings.plugins"


class PluginHost(Protocol):
    """What ``register(tidings)`` gets (the node implements it)."""

    def register_action(self, name: str, run: Any = None, **options: Any) -> Any:
        """Add an action type (:meth:`ActionRegistry.register`; a decorator without ``run``)."""

    def register_job(self, name: str, run: Any = None) -> Any:
        """Add a named job for ``run_job`` (:meth:`ActionRegistry.register_job`)."""


def load_plugins(tidings: PluginHost, modules: Sequence[str]) -> list[str]:
    """Register every plugin; returns their names. A module that cannot
    be imported or has no ``register`` is a configuration error."""
    loaded: list[str] = []
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        entry.load()(tidings)
        loaded.append(entry.name)
    for name in modules:
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            raise InvalidInput(f"cannot import plugin {name!r}: {exc}", field="plugins") from None
        register = getattr(module, "register", None)
        if not callable(register):
            raise InvalidInput(f"plugin {name!r} has no register(tidings)", field="plugins")
        register(tidings)
        loaded.append(name)
    if loaded:
        log.info("plugins loaded: %s", ", ".join(loaded))
    return loaded
