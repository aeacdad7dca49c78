"""The ``tidings`` command line (Typer): ``commands`` holds the root
commands and the shared options, ``automation`` adds rules, jobs, replay
and worker; ``tail`` and ``demo`` are the two interactive programs."""

from __future__ import annotations

from tidings.cli import automation  # registers its commands on the root app
from tidings.cli.commands import app, main

__all__ = ["app", "automation", "main"]
