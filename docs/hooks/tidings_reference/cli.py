"""The CLI reference, walked from the Typer app's click command tree."""

from __future__ import annotations

from collections.abc import Iterator
from enum import Enum
from typing import Any

import typer

from tidings_reference.markdown import cell, code, generated_notice, table


def commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every visible command below ``command`` with its path, groups first."""
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        if getattr(sub, "hidden", False):
            continue
        yield (*path, name), sub
        yield from commands(sub, (*path, name))


def default_of(param: Any) -> str:
    value = param.default
    if callable(value) or value is None or value == () or value == []:
        return ""
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, str | int | float | bool | list | tuple):
        return code(value)
    return ""  # a library sentinel (an unset default), not a value


def usage_of(param: Any, context: Any) -> str:
    """The option as ``--help`` shows it (names, metavar, choices)."""
    record = param.get_help_record(context) if hasattr(param, "get_help_record") else None
    if record:
        return str(record[0])
    return str(param.human_readable_name).upper()


def parameter_rows(command: Any, context: Any) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for param in command.params:
        if getattr(param, "hidden", False):
            continue
        kind = "option" if getattr(param, "param_type_name", "") == "option" else "argument"
        required = "yes" if param.required else ""
        envvar = param.envvar if isinstance(param.envvar, str) else ", ".join(param.envvar or ())
        rows.append(
            (
                code(usage_of(param, context)),
                kind,
                required,
                default_of(param),
                code(envvar),
                cell(getattr(param, "help", None)),
            )
        )
    return rows


def section(path: tuple[str, ...], command: Any) -> str:
    name = " ".join(("tidings", *path))
    # the Context class of whichever click built the app (Typer may carry its own)
    context = command.context_class(command, info_name=name)
    text = f"## `{name}`\n\n{cell(command.help)}\n\n"
    if getattr(command, "commands", None):
        subs = ", ".join(f"`{sub}`" for sub in sorted(command.commands))
        text += f"Sub-commands: {subs}.\n\n"
    rows = parameter_rows(command, context)
    if rows:
        text += table(("parameter", "kind", "required", "default", "env", "help"), rows)
    return text + "\n"


def render() -> str:
    from tidings.cli.main import app  # the root app with every command registered

    root = typer.main.get_command(app)
    body = "".join(section(path, command) for path, command in commands(root))
    return (
        "# Command line\n\n"
        + generated_notice("the Typer app (`tidings.cli.main.app`)")
        + f"\n`tidings`: {cell(root.help)}\n\n"
        + body
    )
