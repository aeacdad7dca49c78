"""The portal's vendored browser bundle is the one its npm lock describes
(no network, no Node): ``scripts/build-portal-vendor`` writes the bundled
packages' versions on the bundle's first line and its sha256 in the README
beside it, so a lock changed without a rebuild, or a bundle edited by hand,
fails here."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

PORTAL = Path(__file__).resolve().parents[2] / "src" / "tidings" / "portal"
VENDOR = PORTAL / "static" / "vendor"
BUNDLE = VENDOR / "portal-vendor.js"
LOCK = PORTAL / "frontend" / "package-lock.json"
BANNER = re.compile(r"^/\*! portal-vendor\.js: (?P<packages>[^;]+); esbuild@(?P<esbuild>[\w.-]+);")
# What the pages import from the bundle (static/app/*.js).
EXPORTS = (
    "QueryClient",
    "QueryClientProvider",
    "createRoot",
    "html",
    "useEffect",
    "useMutation",
    "useQuery",
    "useQueryClient",
    "useRef",
    "useState",
)


def locked_runtime_packages() -> dict[str, str]:
    """name -> version of every package the lock installs for the bundle
    (dev-only packages, esbuild and its binaries, excluded)."""
    lock = json.loads(LOCK.read_text())
    return {
        path.removeprefix("node_modules/"): meta["version"]
        for path, meta in lock["packages"].items()
        if path and not meta.get("dev")
    }


def banner_packages() -> dict[str, str]:
    first_line = BUNDLE.read_text().split("\n", 1)[0]
    match = BANNER.match(first_line)
    assert match, f"no version banner on the bundle's first line: {first_line[:200]}"
    specs = match["packages"].split()
    return dict(spec.rsplit("@", 1) for spec in specs)


def test_bundle_banner_versions_equal_the_lock() -> None:
    locked = locked_runtime_packages()
    assert {"react", "react-dom", "@tanstack/react-query", "htm"} <= locked.keys()
    assert banner_packages() == locked


def test_version_file_lists_the_locked_packages() -> None:
    listed = (VENDOR / "VERSION").read_text().split()
    locked = locked_runtime_packages()
    assert listed == sorted(f"{name}@{version}" for name, version in locked.items())


def test_readme_sha256_matches_the_bundle() -> None:
    digest = hashlib.sha256(BUNDLE.read_bytes()).hexdigest()
    readme = (VENDOR / "README.md").read_text()
    sums = re.findall(r"^([0-9a-f]{64})  portal-vendor\.js$", readme, re.M)
    assert sums == [digest]


def test_manifest_pins_what_the_lock_holds() -> None:
    manifest = json.loads((PORTAL / "frontend" / "package.json").read_text())
    locked = locked_runtime_packages()
    assert manifest["dependencies"] == {name: locked[name] for name in manifest["dependencies"]}


def test_bundle_is_a_production_build_exporting_what_the_pages_import() -> None:
    text = BUNDLE.read_text()
    exported = re.search(r"export\{([^}]*)\};?\s*$", text)
    assert exported, "the bundle does not end with an ES module export list"
    names = {part.split(" as ")[-1].strip() for part in exported[1].split(",")}
    assert set(EXPORTS) <= names
    # React's development build carries its warnings ("Invalid hook call").
    assert "Invalid hook call" not in text and "development" not in text
