"""The API's response models: what every JSON operation answers, so that
``/openapi.json`` is a contract clients can be generated from.

The models *describe* answers; they never build them. Routes return their
JSON already encoded (orjson), and declare the model with
``responses=answers(Model)``: FastAPI puts its schema in the document and
serializes nothing, so the wire format and the cost of an answer stay what
they were. ``tests/server/test_fuzz_api.py`` (schemathesis) checks that real
answers conform to these schemas; ``tests/server/test_openapi_document.py`` that
every operation declares one.

Field names are the wire names (camelCase); a wire name that is a Python
keyword or a ``BaseModel`` attribute (``from``, ``schema``) is an alias.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

Responses = dict[int | str, dict[str, Any]]


def answers(model: type[BaseModel], status: int = 200, description: str = "") -> Responses:
    """``responses=`` of a route decorator: ``model`` as its success answer."""
    declared: dict[str, Any] = {"model": model}
    if description:
        declared["description"] = description
    return {status: declared}


def needs(*operations: str) -> dict[str, Any]:
    """``openapi_extra=`` of a route decorator: the :data:`tidings.services.access.OPERATIONS`
    the route asks for (several when the target decides which), from which
    :mod:`tidings.http.apidoc` derives the operation's ``security``."""
    return {ACCESS_KEY: list(operations)}


ACCESS_KEY = "x-access"
