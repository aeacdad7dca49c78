"""Catalog packs: YAML files shipped in ``packs/`` (and any extra directory
or file given), loaded once at start-up.

A broken pack fails loudly, naming the file and the line: YAML syntax
errors, anchors or aliases (packs stay plain, human-editable data), model
errors (:mod:`tidings.core.catalog`) and convention breaks
(:mod:`tidings.core.conventions`) all come out as
``path/to/pack.yaml:42: type 'X': ...``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tidings.core.catalog import Catalog, CatalogError, EventType, Location
from tidings.core.catalog_packs import pack_types
from tidings.core.conventions import check_pack

PACKS_DIR = Path(__file__).with_name("packs")


@dataclass
class Pack:
    path: Path
    data: dict[str, Any]
    lines: dict[Location, int] = field(default_factory=dict)  # location -> 1-based line
    types: list[EventType] = field(default_factory=list)

    @property
    def name(self) -> str:
        return str(self.data.get("pack", self.path.stem))

    def line_of(self, location: Location) -> int | None:
        """The line of the deepest known prefix of ``location``."""
        for end in range(len(location), -1, -1):
            line = self.lines.get(tuple(location[:end]))
            if line is not None:
                return line
        return None

    def error(self, exc: CatalogError) -> CatalogError:
        line = self.line_of(exc.location)
        where = f"{self.path}:{line}" if line is not None else str(self.path)
        return CatalogError(f"{where}: {exc.message}", location=exc.location)


def _mark_lines(node: yaml.Node, location: Location, lines: dict[Location, int]) -> None:
    lines.setdefault(location, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                child = (*location, key.value)
                lines[child] = key.start_mark.line + 1
                _mark_lines(value, child, lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _mark_lines(item, (*location, index), lines)


def _refuse_anchors(text: str, path: Path) -> None:
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        anchored = isinstance(event, yaml.AliasEvent) or (
            isinstance(event, (yaml.ScalarEvent, yaml.MappingStartEvent, yaml.SequenceStartEvent))
            and event.anchor is not None
        )
        if anchored:
            line = f":{event.start_mark.line + 1}" if event.start_mark is not None else ""
            raise CatalogError(
                f"{path}{line}: anchors and aliases are not allowed in "
                "catalog packs (write each entry out)"
            )


def read_pack(path: Path) -> Pack:
    """Parse one pack file, remembering the line of every key."""
    try:
        text = path.read_text(encoding="utf-8")
        _refuse_anchors(text, path)
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        raise CatalogError(f"{path}{line}: {exc.problem}") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise CatalogError(f"{path}: {exc}") from None
    if not isinstance(data, dict) or "types" not in data:
        raise CatalogError(f"{path}:1: a pack is a mapping with 'pack', 'naming' and 'types'")
    data.setdefault("pack", path.stem)
    lines: dict[Location, int] = {}
    if node is not None:
        _mark_lines(node, (), lines)
    return Pack(path, data, lines)


def pack_files(extra: Iterable[Path] = (), *, shipped: bool = True) -> list[Path]:
    """The shipped packs, then each extra directory's ``*.yaml`` (or file)."""
    files = sorted(PACKS_DIR.glob("*.yaml")) if shipped else []
    for item in extra:
        item = Path(item)
        files += sorted(item.glob("*.yaml")) if item.is_dir() else [item]
    return files


def load_packs(extra: Iterable[Path] = (), *, shipped: bool = True) -> list[Pack]:
    """Read and check every pack (each on its own, for a precise message)."""
    packs: list[Pack] = []
    for path in pack_files(extra, shipped=shipped):
        pack = read_pack(path)
        try:
            pack.types = pack_types(pack.data)
            check_pack(pack.data, pack.types)
        except CatalogError as exc:
            raise pack.error(exc) from None
        packs.append(pack)
    return packs


def catalog_of(packs: Iterable[Pack]) -> Catalog:
    """One catalog from checked packs; a type defined twice names both files."""
    seen: dict[str, Pack] = {}
    types: list[EventType] = []
    for pack in packs:
        for event_type in pack.types:
            first = seen.get(event_type.name)
            if first is not None:
                location: Location = ("types", event_type.name)
                raise CatalogError(
                    f"{pack.path}:{pack.line_of(location)}: type {event_type.name!r} is "
                    f"already defined in {first.path}:{first.line_of(location)}",
                    location=location,
                )
            seen[event_type.name] = pack
            types.append(event_type)
    return Catalog(types)


def load_catalog(extra: Iterable[Path] = (), *, shipped: bool = True) -> Catalog:
    return catalog_of(load_packs(extra, shipped=shipped))


__all__ = ["PACKS_DIR", "Pack", "catalog_of", "load_catalog", "load_packs", "read_pack"]
