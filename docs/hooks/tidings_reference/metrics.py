"""The metrics reference, read from the Prometheus registry of a hub built in-process."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry

from tidings_reference.markdown import cell, code, generated_notice, table

# Labels the exposition adds to a family's samples, not declared by it.
SAMPLE_LABELS = frozenset({"le", "quantile"})
# Sample suffixes per family type, as the text exposition writes them.
SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_sum", "_count"),
    "summary": ("_sum", "_count"),
    "info": ("_info",),
}


@dataclass(frozen=True)
class Family:
    name: str
    kind: str
    help: str
    labels: tuple[str, ...]

    @property
    def exposed(self) -> tuple[str, ...]:
        """The sample names a scrape shows for this family."""
        suffixes = SUFFIXES.get(self.kind)
        return tuple(self.name + s for s in suffixes) if suffixes else (self.name,)


def families(registry: CollectorRegistry) -> list[Family]:
    """Every family the registry exposes, with its declared and seen labels."""
    declared = dict(_declared_labels(registry))
    found = []
    for metric in registry.collect():
        labels = set(getattr(metric, "_labelnames", ()) or ()) | declared.get(metric.name, set())
        labels |= {name for sample in metric.samples for name in sample.labels}
        found.append(
            Family(
                metric.name,
                metric.type,
                metric.documentation,
                tuple(sorted(labels - SAMPLE_LABELS)),
            )
        )
    return sorted(found, key=lambda family: family.name)


def _declared_labels(registry: CollectorRegistry) -> Iterator[tuple[str, set[str]]]:
    # A labelled prometheus_client metric with no child yet has no sample to
    # show its labels; the metric object itself declares them.
    collectors: Iterable[Any] = getattr(registry, "_collector_to_names", {})
    for collector in list(collectors):
        names = getattr(collector, "_labelnames", None)
        name = getattr(collector, "_name", None)
        if names and name:
            yield name, set(names)


def registry_of_a_hub(database_url: str) -> CollectorRegistry:
    """The registry ``/metrics`` serves, of a hub built (not started) on ``database_url``."""
    from tidings.config import Settings
    from tidings.http.app import create_app

    hub = create_app(Settings(database_url=database_url))
    registry: CollectorRegistry = hub.api.state.metrics.registry
    return registry


def render(database_url: str) -> str:
    rows = [
        (
            "<br>".join(code(name) for name in family.exposed),
            family.kind,
            ", ".join(code(label) for label in family.labels),
            cell(family.help),
        )
        for family in families(registry_of_a_hub(database_url))
    ]
    return (
        "# Metrics\n\n"
        + generated_notice(
            "the Prometheus registry of a hub built in-process (what `/metrics` serves)"
        )
        + "\n`GET /metrics` answers in the Prometheus text format; when `metrics_token` is set it "
        "needs `Authorization: Bearer <token>`.\n\n"
        + table(("metric", "type", "labels", "help"), rows)
    )
