"""JSON pointers (RFC 6901): how every error names the field it is about."""

from __future__ import annotations


def pointer_token(part: object) -> str:
    """One reference token: ``~`` and ``/`` escaped, so any key is one step."""
    return str(part).replace("~", "~0").replace("/", "~1")
