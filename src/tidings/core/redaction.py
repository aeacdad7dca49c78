"""Removing sensitive fields (PII) for viewers who lack the permission.

The hub serializes an event once per *variant*: the set of the type's
sensitive permissions a viewer holds. Viewers with the same variant share
the same bytes.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from tidings.core.audience import Viewer

Variant = frozenset[str]
FULL: Variant = frozenset({"*"})


def variant_for(viewer: Viewer, sensitive: Mapping[str, str]) -> Variant:
    """Which sensitive permissions of this type the viewer holds."""
    if not sensitive:
        return FULL
    if "*" in viewer.permissions:
        return FULL
    needed = frozenset(sensitive.values())
    held = needed & viewer.permissions
    return FULL if held == needed else held


def carried(wire: Mapping[str, Any], sensitive: Mapping[str, str]) -> dict[str, str]:
    """The sensitive paths this envelope actually carries: redacting the
    others changes nothing, so an event carrying none needs one encoding
    for every viewer."""
    return {path: perm for path, perm in sensitive.items() if _holds(wire, path.split("."))}


def _holds(node: Any, parts: list[str]) -> bool:
    *parents, leaf = parts
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else None
    return isinstance(node, dict) and leaf in node


def redact(wire: dict[str, Any], sensitive: Mapping[str, str], variant: Variant) -> dict[str, Any]:
    """A copy of the wire envelope without the fields the variant may not see.

    Paths are dotted from the envelope root (``data.reporter.email``,
    ``metadata.assigneeEmail``); missing paths are ignored.
    """
    if variant == FULL or not sensitive:
        return wire
    hidden = [path for path, permission in sensitive.items() if permission not in variant]
    if not hidden:
        return wire
    out = copy.deepcopy(wire)
    for path in hidden:
        *parents, leaf = path.split(".")
        node: Any = out
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(leaf, None)
    return out
