"""Where this app is mounted: the ASGI ``root_path`` (a host's ``Mount``
prefix, or uvicorn's ``--root-path``; empty at the root). ``scope["path"]``
includes it, so a route is matched on the rest, and every URL this app
writes into a page, a redirect or a cookie starts with it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.requests import HTTPConnection


def root_path(scope: Mapping[str, Any]) -> str:
    """The mount prefix, without a trailing slash ("" at the root)."""
    return str(scope.get("root_path", "")).rstrip("/")


def route_path(scope: Mapping[str, Any]) -> str:
    """The request's path below the mount prefix (what routes match; the
    rule of Starlette's router: "/hubx" is not below "/hub")."""
    path = str(scope["path"])
    root = root_path(scope)
    if not root or not path.startswith(root):
        return path
    rest = path[len(root) :]
    return rest if rest == "" or rest.startswith("/") else path


def under_root(connection: HTTPConnection, path: str) -> str:
    """``path`` (an absolute path of this app, e.g. ``/admin/log``) as the
    browser must request it: below the mount prefix."""
    return root_path(connection.scope) + path
