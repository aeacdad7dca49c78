"""Reference pages generated from the code: HTTP API, CLI, configuration,
catalog and metrics. :func:`pages` builds them all with nothing left behind:
the hub they read is built (never started) on a SQLite file in a temporary
directory removed afterwards, so no server and no database is needed."""

from __future__ import annotations

import tempfile
from pathlib import Path

from tidings_reference import catalog, cli, http_api, metrics, settings

# Site path of each generated page (the nav in mkdocs.yml names these).
HTTP = "reference/http-api.md"
CLI = "reference/cli.md"
CONFIGURATION = "reference/configuration.md"
CATALOG = "reference/catalog.md"
METRICS = "reference/metrics.md"


def pages() -> dict[str, str]:
    """Site path -> Markdown of every generated reference page."""
    with tempfile.TemporaryDirectory(prefix="tidings-docs-") as folder:
        database_url = f"sqlite:///{Path(folder) / 'reference.db'}"
        return {
            HTTP: http_api.render(http_api.document_of_a_hub(database_url)),
            CLI: cli.render(),
            CONFIGURATION: settings.render(),
            CATALOG: catalog.render(),
            METRICS: metrics.render(database_url),
        }
