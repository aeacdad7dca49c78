"""Reading the admin pages' forms, and saying what was wrong with them."""

from __future__ import annotations

from tidings.errors import TidingsError


def field_text(value: object) -> str:
    """A form field's text ("" for a missing field or an uploaded file)."""
    return value if isinstance(value, str) else ""


def refusal(exc: TidingsError) -> str:
    """A refused input as the page says it, the field first:
    ``"Mappings: unknown tenant state 'X' (at /mappings/A/transition)"``."""
    path = (exc.field or "").strip("/")
    if not path:
        return str(exc.detail)
    head, _, rest = path.partition("/")
    where = f" (at /{path})" if rest else ""
    return f"{head.capitalize()}: {exc.detail}{where}"
