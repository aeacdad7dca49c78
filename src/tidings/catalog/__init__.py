"""Catalog packs: YAML files shipped in ``packs/`` (and any extra directory
given in configuration), loaded once at start-up.

A broken pack fails loudly, naming the file (and the line, for YAML syntax
errors). The model and the rules live in :mod:`tidings.core.catalog`.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from tidings.core.catalog import Catalog, CatalogError, catalog_from_packs

PACKS_DIR = Path(__file__).with_name("packs")


def read_pack(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        raise CatalogError(f"{path}{line}: {exc.problem}") from None
    except (OSError, yaml.YAMLError) as exc:
        raise CatalogError(f"{path}: {exc}") from None
    if not isinstance(data, dict) or "types" not in data:
        raise CatalogError(f"{path}: a pack is a mapping with 'pack' and 'types'")
    data.setdefault("pack", path.stem)
    return data


def pack_files(extra_dirs: Iterable[Path] = ()) -> list[Path]:
    files = sorted(PACKS_DIR.glob("*.yaml"))
    for directory in extra_dirs:
        files += sorted(Path(directory).glob("*.yaml"))
    return files


def load_catalog(extra_dirs: Iterable[Path] = ()) -> Catalog:
    packs = []
    for path in pack_files(extra_dirs):
        pack = read_pack(path)
        try:
            packs.append(pack)
            catalog_from_packs([pack])  # validate each pack on its own for a precise message
        except CatalogError as exc:
            raise CatalogError(f"{path}: {exc}") from None
    return catalog_from_packs(packs)
