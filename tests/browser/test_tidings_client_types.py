"""tidings-client as a package: ``npm pack`` of ``src/tidings/static`` holds
the module, the classic script and the types; npm installs that tarball
into a project; the real TypeScript compiler (``tsc --noEmit``, strict)
accepts ``tsclient/usage.ts`` (typed events, options, the hook with React
and React Query's ``QueryClient``) and rejects each deliberate misuse in
``tsclient/misuse.ts`` with exactly the error its comment names.

The compiler and the libraries' types come from the npm registry, pinned,
into ``artifacts/npm-typescript`` (ignored by git; reused between runs).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from support import need

REPO = Path(__file__).resolve().parents[2]
STATIC = REPO / "src" / "tidings" / "static"
EXAMPLES = Path(__file__).resolve().parent / "tsclient"
CACHE = REPO / "artifacts" / "npm-typescript"
PORTAL_LOCK = REPO / "src" / "tidings" / "portal" / "frontend" / "package-lock.json"
TYPESCRIPT = "7.0.2"
TYPES_REACT = "19.3.0"  # React's own types for the 19.3 line the portal vendors
NPM_TIMEOUT_S = 300
TSC_TIMEOUT_S = 120
PACKAGE_FILES = {"package.json", "tidings.mjs", "tidings.js", "tidings.d.ts"}


def portal_version(package: str) -> str:
    lock = json.loads(PORTAL_LOCK.read_text())
    return str(lock["packages"][f"node_modules/{package}"]["version"])


def wanted_toolchain() -> dict[str, str]:
    return {
        "typescript": TYPESCRIPT,
        "@tanstack/query-core": portal_version("@tanstack/query-core"),
        "@types/react": TYPES_REACT,
    }


def installed_version(prefix: Path, package: str) -> str | None:
    manifest = prefix / "node_modules" / package / "package.json"
    return json.loads(manifest.read_text())["version"] if manifest.exists() else None


def npm(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        ["npm", *args, "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=NPM_TIMEOUT_S,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.fixture(scope="module")
def toolchain() -> Path:
    """The pinned compiler and types, installed once (npm is skipped when
    the cache already holds exactly these versions)."""
    need(shutil.which("npm") is not None, "npm (Node.js)")
    wanted = wanted_toolchain()
    CACHE.mkdir(parents=True, exist_ok=True)
    if any(installed_version(CACHE, name) != version for name, version in wanted.items()):
        specs = [f"{name}@{version}" for name, version in wanted.items()]
        npm("install", "--prefix", str(CACHE), *specs, cwd=CACHE)
    return CACHE


@pytest.fixture(scope="module")
def project(toolchain: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An app's folder: the packed client npm-installed from its tarball,
    the libraries' packages linked in from the cache."""
    folder = tmp_path_factory.mktemp("tsapp")
    packed = npm("pack", str(STATIC), "--pack-destination", str(folder), "--json", cwd=folder)
    (tarball,) = json.loads(packed.stdout)
    assert {entry["path"] for entry in tarball["files"]} == PACKAGE_FILES
    npm("install", "--offline", "--prefix", str(folder), f"./{tarball['filename']}", cwd=folder)
    modules = folder / "node_modules"
    for entry in (toolchain / "node_modules").iterdir():
        if not entry.name.startswith(".") and not (modules / entry.name).exists():
            (modules / entry.name).symlink_to(entry)
    for example in EXAMPLES.glob("*.ts"):
        shutil.copy(example, folder / example.name)
    return folder


def tsc(project: Path, source: str) -> subprocess.CompletedProcess[str]:
    config = {
        "compilerOptions": {
            "strict": True,
            "noEmit": True,
            "target": "es2022",
            "module": "esnext",
            "moduleResolution": "bundler",
            "lib": ["es2022", "dom"],
            "skipLibCheck": False,  # tidings.d.ts itself is checked too
            "types": [],
        },
        "files": [source],
    }
    name = f"tsconfig.{source}.json"
    (project / name).write_text(json.dumps(config))
    return subprocess.run(
        [str(CACHE / "node_modules" / ".bin" / "tsc"), "-p", name, "--pretty", "false"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=TSC_TIMEOUT_S,
    )


def test_the_usage_example_compiles(project: Path) -> None:
    installed = project / "node_modules" / "tidings-client"
    assert (installed / "tidings.d.ts").read_text() == (STATIC / "tidings.d.ts").read_text()
    checked = tsc(project, "usage.ts")
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_each_misuse_fails_with_its_error(project: Path) -> None:
    expected = {
        (number, code)
        for number, line in enumerate((EXAMPLES / "misuse.ts").read_text().splitlines(), 1)
        for code in re.findall(r"// error (TS\d+)", line)
    }
    assert len(expected) >= 5
    checked = tsc(project, "misuse.ts")
    assert checked.returncode != 0
    reported = {
        (int(line), code)
        for line, code in re.findall(
            r"^misuse\.ts\((\d+),\d+\): error (TS\d+)", checked.stdout, re.M
        )
    }
    assert reported == expected, checked.stdout


def test_the_types_declare_what_the_module_exports() -> None:
    module = (STATIC / "tidings.mjs").read_text()
    types = (STATIC / "tidings.d.ts").read_text()
    exported = set(re.findall(r"^export (?:const|function) (\w+)", module, re.M))
    declared = set(re.findall(r"^export declare (?:const|function) (\w+)", types, re.M))
    assert exported == declared == {"DEFAULT_QUERY_KEYS", "connect", "keysFor", "useTidings"}


def test_the_package_manifest_matches_the_python_package() -> None:
    from tidings import __version__

    manifest = json.loads((STATIC / "package.json").read_text())
    assert manifest["version"] == __version__
    assert manifest["exports"]["."] == {"types": "./tidings.d.ts", "default": "./tidings.mjs"}
    assert set(manifest["files"]) | {"package.json"} == PACKAGE_FILES
    assert (
        wanted_toolchain()["@types/react"].split(".")[:2] == portal_version("react").split(".")[:2]
    )
