"""The docs site: ``mkdocs build --strict`` of the real ``mkdocs.yml``, then
the built pages checked against the code they are generated from.

The site is built once per module (a subprocess, with a timeout). Strict
mode turns MkDocs' warnings into failures: a broken link or anchor, a page
missing from the nav, a nav entry without its file.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tidings.catalog import load_packs
from tidings.config import ENV_PREFIX, SECRET_SETTINGS, Settings

ROOT = Path(__file__).resolve().parents[2]
BUILD_TIMEOUT_S = 180
PERMALINK = "\u00b6"  # toc's permalink sign, after every heading's text
# An element that loads something from another host: what an offline site must not have.
REMOTE_ASSET = re.compile(
    r"<(?:script|link|img|iframe|source)\b[^>]*\b(?:src|href)=[\"']?(?:https?:)?//", re.I
)
REMOTE_CSS = re.compile(r"(?:url\(\s*[\"']?|@import\s+[\"']?)(?:https?:)?//", re.I)


def mkdocs_build(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", config, "--site-dir", site],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    built = tmp_path_factory.mktemp("site")
    result = mkdocs_build(ROOT / "mkdocs.yml", built)
    assert result.returncode == 0, result.stdout + result.stderr
    return built


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._skip += tag in ("script", "style")

    def handle_endtag(self, tag: str) -> None:
        self._skip -= tag in ("script", "style")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def text_of(page: Path) -> str:
    """The page's visible text, entities decoded, whitespace collapsed."""
    parser = _Text()
    parser.feed(page.read_text(encoding="utf-8"))
    return " ".join(" ".join(parser.parts).split())


def section(text: str, heading: str) -> str:
    """The text under ``heading`` up to the next heading (headings end with
    the permalink sign)."""
    start = f" {text}".index(f" {heading} {PERMALINK}") + len(heading) + 2
    end = text.find(f" {PERMALINK}", start)
    return text[start : end if end >= 0 else len(text)]


def nav_entries(nav: Any) -> Iterator[tuple[str, str]]:
    """(title, page) of every page in the nav."""
    for item in nav:
        for title, value in item.items():
            if isinstance(value, str):
                yield title, value
            else:
                yield from nav_entries(value)


def built_path(page: str) -> str:
    return re.sub(r"(README)?\.md$", lambda m: "index.html" if m[1] else ".html", page)


def test_every_nav_page_is_built_and_in_the_menu(site: Path) -> None:
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    entries = list(nav_entries(config["nav"]))
    assert {"quickstart.md", "concepts.md", "EMBEDDING.md", "OUTBOX.md"} <= {p for _, p in entries}
    home = " ".join((site / "index.html").read_text(encoding="utf-8").split())
    for title, page in entries:
        html = site / built_path(page)
        assert html.is_file(), f"{page} was not built ({html})"
        assert text_of(html), page
        # the menu links the page under its own title (not folded into a section)
        link = rf'href="{re.escape(built_path(page))}"[^>]*>\s*<span class="md-ellipsis">\s*'
        assert re.search(link + re.escape(title), home), (title, page)


def test_the_site_loads_nothing_from_another_host(site: Path) -> None:
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    assert config["theme"]["font"] is False  # Material's default loads Google Fonts
    pages = list(site.rglob("*.html"))
    assert len(pages) > 20
    for page in pages:
        found = REMOTE_ASSET.search(page.read_text(encoding="utf-8"))
        assert found is None, f"{page.relative_to(site)}: {found and found[0]}"
    for sheet in site.rglob("*.css"):
        found = REMOTE_CSS.search(sheet.read_text(encoding="utf-8"))
        assert found is None, f"{sheet.relative_to(site)}: {found and found[0]}"


def test_strict_build_refuses_broken_links_and_pages_left_out(tmp_path: Path) -> None:
    # The real configuration's checks, on a two-page site with both mistakes.
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text("# Home\n\nSee [the guide](missing.md#setup).\n")
    (docs / "orphan.md").write_text("# Not in the nav\n")
    del config["hooks"]
    config.update(docs_dir=str(docs), nav=[{"Home": "index.md"}])
    (tmp_path / "mkdocs.yml").write_text(yaml.safe_dump(config))
    result = mkdocs_build(tmp_path / "mkdocs.yml", tmp_path / "site")
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "missing.md" in output, output
    assert "orphan.md" in output, output


# -- the generated references hold what the code has --------------------------


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from tidings.http.app import create_app

    database = tmp_path_factory.mktemp("hub") / "docs.db"
    return create_app(Settings(database_url=f"sqlite:///{database}"))


def test_http_reference_has_every_operation_parameter_and_problem(site: Path, hub: Any) -> None:
    text = text_of(site / "reference" / "http-api.html")
    html = (site / "reference" / "http-api.html").read_text(encoding="utf-8")
    document = hub.api.openapi()
    count = 0
    for path, item in document["paths"].items():
        for method, operation in item.items():
            heading = f"{method.upper()} {path}"
            under = section(text, heading)
            for parameter in operation.get("parameters", []):
                assert parameter["name"] in under, (heading, parameter["name"])
            for status in operation["responses"]:
                assert f" {status} " in under, (heading, status)
            count += 1
    assert count >= 60
    for name in document["components"]["schemas"]:
        assert f'id="schema-{re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")}"' in html, name


def _commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, Any]]:
    for name, sub in getattr(command, "commands", {}).items():
        yield " ".join(("tidings", *path, name)), sub
        yield from _commands(sub, (*path, name))


def test_cli_reference_has_every_command_and_option(site: Path) -> None:
    from tidings.cli.main import app

    text = text_of(site / "reference" / "cli.html")
    commands = list(_commands(typer.main.get_command(app)))
    assert {"tidings serve", "tidings rules list", "tidings catalog diff"} <= {
        n for n, _ in commands
    }
    for name, command in commands:
        under = section(text, name)
        for param in command.params:
            for option in (*param.opts, *param.secondary_opts):
                assert option in under, (name, option)
            if param.help:
                assert " ".join(param.help.split()) in under, (name, param.name)


def test_configuration_reference_has_every_setting(site: Path) -> None:
    text = text_of(site / "reference" / "configuration.html")
    for name, field in Settings.model_fields.items():
        row = text[text.index(f"{name} {ENV_PREFIX}{name.upper()}") :]
        assert " ".join(str(field.description).split()) in row, name
        if name not in SECRET_SETTINGS and field.default not in (None, ()):
            default = field.default
            shown = ", ".join(default) if isinstance(default, tuple) else str(default)
            assert shown in row[: row.index(str(field.description)[:20])], name


def test_catalog_reference_has_every_type_and_version(site: Path) -> None:
    text = text_of(site / "reference" / "catalog.html")
    packs = load_packs()
    assert sum(len(p.types) for p in packs) > 100
    for pack in packs:
        assert str(len(pack.types)) in section(text, f"Pack {pack.name}"), pack.name
        for event_type in pack.types:
            entry = section(text, event_type.name)
            versions = ", ".join(str(v) for v in sorted(event_type.versions))
            assert f"versions {versions}" in entry, event_type.name
            for field in event_type.versions[event_type.latest].get("properties", {}):
                assert field in entry, (event_type.name, field)


async def test_metrics_reference_has_every_family_a_scrape_shows(site: Path, hub: Any) -> None:
    text = text_of(site / "reference" / "metrics.html")
    transport = httpx.ASGITransport(app=hub)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub", timeout=30) as client:
        scrape = await client.get("/metrics")
    assert scrape.status_code == 200
    families = [
        f for f in text_string_to_metric_families(scrape.text) if not f.name.endswith("_created")
    ]
    assert len(families) >= 10
    for family in families:
        exposed = family.name + ("_total" if family.type == "counter" else "")
        assert exposed in text, exposed
        row = text[text.index(exposed) :]
        assert family.type in row[:400] and family.documentation in row, family.name
