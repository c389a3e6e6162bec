"""One scrape: the per-process metrics of every process (summed through the multiprocess
folder when there is one), then the sale's numbers read now (monitoring/collector.py)."""

import os

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector

from .collector import SaleCollector

CONTENT_TYPE = CONTENT_TYPE_LATEST


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def process_registry() -> CollectorRegistry:
    """Every process's counters: with a multiprocess folder, a fresh registry that sums the
    files of all processes that wrote there (living or dead); without one (a single process:
    tests, `manage.py runserver`, a solo Celery pool), this process's own."""
    folder = multiprocess_dir()
    if folder is None:
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=folder)
    return registry


def scrape() -> bytes:
    sale = CollectorRegistry(auto_describe=False)
    sale.register(SaleCollector())
    # Two registries, one text: their metric names are disjoint, so the text format allows it.
    return generate_latest(process_registry()) + generate_latest(sale)
