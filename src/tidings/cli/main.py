"""The ``tidings`` program: the root commands with the automation ones
registered on them (``pyproject.toml``'s entry point and ``python -m tidings``)."""

from __future__ import annotations

from tidings.cli import automation  # registers its commands on the root app
from tidings.cli.commands import app, main

__all__ = ["app", "automation", "main"]
