"""The configuration reference, read from the ``Settings`` model."""

from __future__ import annotations

from typing import Any

from pydantic.fields import FieldInfo

from tidings.cli.settings_flags import DECLARED_NAMES
from tidings.config import ENV_PREFIX, SECRET_SETTINGS, Settings, flag_of
from tidings_reference.markdown import cell, code, generated_notice, table


def type_name(field: FieldInfo) -> str:
    """The setting's type as a reader writes it (``int``, ``list of str``, ...)."""
    kind: Any = field.annotation
    if kind == tuple[str, ...]:
        return "list of str (comma-separated)"
    text = getattr(kind, "__name__", None) or str(kind)
    return text.replace("NoneType", "None").replace("typing.", "")


def default_of(name: str, field: FieldInfo) -> str:
    if name in SECRET_SETTINGS or field.default is None:
        return "none"
    if isinstance(field.default, tuple):
        return code(", ".join(field.default)) if field.default else "none"
    return code(field.default)


def render() -> str:
    rows = [
        (
            code(name),
            code(f"{ENV_PREFIX}{name.upper()}"),
            " ".join(code(f) for f in DECLARED_NAMES.get(name, (flag_of(name),))),
            cell(type_name(field)),
            default_of(name, field),
            cell(field.description),
        )
        for name, field in Settings.model_fields.items()
    ]
    return (
        "# Configuration\n\n"
        + generated_notice("the `Settings` model (`tidings.config`)")
        + "\nSources, later ones winning: the defaults below, a TOML file (`--config` or "
        "`TIDINGS_CONFIG`; keys as in the first column, in a `[tidings]` table), the "
        "environment variables, then the `tidings serve` flags. Secrets are masked when "
        "settings are printed or logged.\n\n"
        + table(("setting", "environment", "flag", "type", "default", "description"), rows)
    )
