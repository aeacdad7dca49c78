"""``tidings serve`` flags generated from the ``Settings`` fields.

One flag per setting, named after the field (``max_replay`` ->
``--max-replay``; booleans get ``--x/--no-x``; lists repeat the flag), its
help the field's description plus the environment variable, so a new
setting is a flag without another line here. An unset flag is ``None`` and
leaves the lower sources (file, environment, default) in charge.
"""

from __future__ import annotations

import enum
import inspect
from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar, get_args, get_origin

import typer
from pydantic.fields import FieldInfo

from tidings.config import ENV_PREFIX, SECRET_SETTINGS, Settings, flag_of

# Flags whose names predate the generated ones (kept for compatibility).
DECLARED_NAMES: dict[str, tuple[str, ...]] = {
    "database_url": ("--database", "--database-url"),
    "log_json": ("--log-json/--log-text",),
}

Command = TypeVar("Command", bound=Callable[..., Any])


def setting_option(name: str, field: FieldInfo) -> Any:
    """The ``Annotated[...]`` type of the flag of setting ``name``."""
    kind: Any = field.annotation
    names = DECLARED_NAMES.get(name)
    if kind is bool:
        names = names or (f"{flag_of(name)}/--no-{flag_of(name)[2:]}",)
    elif kind == tuple[str, ...]:
        kind = list[str]
    if get_origin(kind) is Literal:
        # A choice of words as a str Enum: every Typer takes those (older
        # ones refuse Literal); ``plain`` turns the member back into its word.
        kind = _choice(flag_of(name)[2:], [str(value) for value in get_args(kind)])
    names = names or (flag_of(name),)
    source = f"{ENV_PREFIX}{name.upper()}"
    if field.default not in (None, ()) and name not in SECRET_SETTINGS:
        source += f"; default {field.default}"
    option = typer.Option(*names, help=f"{field.description} ({source})", show_default=False)
    return Annotated[kind | None, option]


def _choice(name: str, words: list[str]) -> Any:
    return enum.Enum(name, {word: word for word in words}, type=str)


def with_setting_flags(command: Command) -> Command:
    """Give ``command`` (which takes ``**flags``) a flag for every setting.

    Typer reads a command's parameters from its signature; this replaces the
    ``**flags`` catch-all with one keyword parameter per ``Settings`` field,
    so Typer hands the parsed values over as ``flags[field_name]``.
    """
    signature = inspect.signature(command, eval_str=True)
    own = [p for p in signature.parameters.values() if p.kind is not p.VAR_KEYWORD]
    flags = [
        inspect.Parameter(
            name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=setting_option(name, f)
        )
        for name, f in Settings.model_fields.items()
    ]
    parameters = [*own, *flags]
    command.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in parameters} | {"return": None}
    return command


def plain(flags: dict[str, Any]) -> dict[str, Any]:
    """The parsed flags with choice members as their words."""
    return {k: v.value if isinstance(v, enum.Enum) else v for k, v in flags.items()}
