"""The browser tests' shared fixtures: ``browser`` (Debian's Chromium) and
``admin_tab`` (a logged-in Integration Manager tab; the module provides
``ui_server_url``)."""

from admin_ui import admin_tab, browser  # noqa: F401 - fixtures
