"""Tidings: a self-hosted, multi-tenant domain-event hub."""

from __future__ import annotations

__version__ = "0.1.0"

from tidings.config import Settings, load_settings
from tidings.errors import TidingsError
from tidings.node import Tidings

__all__ = ["Settings", "Tidings", "TidingsError", "__version__", "load_settings"]
