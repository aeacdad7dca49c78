"""The browser tests' shared fixtures: ``browser`` (Debian's Chromium),
``ui_server`` / ``ui_server_url`` (a server per module) and ``admin_tab``
(a logged-in Integration Manager tab on it)."""

from admin_ui import admin_tab, browser, ui_server, ui_server_url  # noqa: F401 - fixtures
