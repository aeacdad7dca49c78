"""The SQL store: shared SQLAlchemy Core (``common.py``), SQLite's and
PostgreSQL's hooks (``sqlite.py``, ``postgres.py``), composed by
``store.py``."""

from __future__ import annotations

from tidings.store.sql.postgres import CONTROL_CHANNEL, LOG_CHANNEL
from tidings.store.sql.sqlite import sqlite_path
from tidings.store.sql.store import SQLStore, normalize_url, open_backend

__all__ = [
    "CONTROL_CHANNEL",
    "LOG_CHANNEL",
    "SQLStore",
    "normalize_url",
    "open_backend",
    "sqlite_path",
]
