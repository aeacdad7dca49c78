"""Reading the Integration Manager's forms (text fields, JSON fields, the
tenants offered in a tenant picker) and saying what was wrong with them."""

from __future__ import annotations

import json
import re
from typing import Any

from fastapi import Request
from starlette.datastructures import FormData

from tidings.errors import InvalidInput, TidingsError
from tidings.http.events import node
from tidings.services.sessions import AdminSession

MAX_JSON_CHARS = 256 * 1024


def text(
    form: FormData,
    name: str,
    limit: int = 500,
    *,
    label: str | None = None,
    pattern: str | None = None,
    hint: str = "",
) -> str:
    """A trimmed text field ('' when missing): :class:`InvalidInput` naming
    the field (``label``, else its name) when it is longer than ``limit``
    or does not match ``pattern``."""
    found = field_text(form.get(name)).strip()
    if len(found) > limit:
        raise InvalidInput(f"{label or name}: at most {limit} characters", field=name)
    if found and pattern is not None and not re.fullmatch(pattern, found):
        raise InvalidInput(f"{label or name}: {hint or 'not a valid value'}", field=name)
    return found


def json_field(form: FormData, name: str, *, default: Any = None, label: str | None = None) -> Any:
    """A field holding JSON (``default`` when empty), refused naming the
    field and the place of the syntax error."""
    raw = text(form, name, MAX_JSON_CHARS)
    if not raw:
        return default
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"{label or name} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})",
            field=name,
        ) from None


def pretty(value: Any) -> str:
    """JSON as the pages show it: indented, non-ASCII kept."""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False)


async def tenant_choices(request: Request, session: AdminSession) -> list[str]:
    """The tenant ids a picker offers: the session's own, or every tenant."""
    if session.tenant_id is not None:
        return [session.tenant_id]
    tenants = await node(request).identity.list_tenants(session.principal)
    return sorted(t.id for t in tenants)


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
