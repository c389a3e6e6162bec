"""ops/grafana's dashboard and ops/prometheus's config read as data (no Prometheus or Grafana
runs here): every series a panel asks for is one that /metrics serves."""

import json
import re
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from events.tasks import dispatch_events
from tests.concerts.factories import ScheduleFactory
from tests.monitoring.conftest import scrape_text

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "ops" / "grafana" / "dashboards" / "concerts.json"
METRIC = re.compile(r"\bconcerts_[a-z_]+")

pytestmark = pytest.mark.django_db


def panel_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [
        target["expr"]
        for panel in dashboard["panels"]
        if panel["type"] != "row"
        for target in panel["targets"]
    ]


def test_every_series_the_dashboard_asks_for_is_served(api_client, customer_client, metrics_on):
    ScheduleFactory()  # a concert on sale
    customer_client.get("/api/v1/accounts/me")  # a request counted
    dispatch_events.apply()  # a task run counted
    text = scrape_text(api_client)
    served = {
        sample.name for family in text_string_to_metric_families(text) for sample in family.samples
    }
    # Series with no sample yet (no 503 so far, no hold of the concert) are still announced.
    served |= set(re.findall(r"^# HELP (\S+)", text, flags=re.MULTILINE))

    asked = {name for query in panel_queries() for name in METRIC.findall(query)}

    assert asked, "the dashboard queries no metric"
    assert asked - served == set()


def test_the_dashboard_has_the_panels_an_on_sale_needs():
    dashboard = json.loads(DASHBOARD.read_text())
    titles = {panel["title"] for panel in dashboard["panels"]}
    queries = " ".join(panel_queries())

    assert dashboard["uid"] and dashboard["title"]
    assert {"Request rate by route", "Latency p95 by route", "5xx answers", "503s by cause"} <= (
        titles
    )
    for needed in [
        "concerts_queue_waiting",
        "concerts_queue_admitted",
        "concerts_queue_admissions_per_minute",
        'concerts_seats{state="sold"}',
        "concerts_revenue_won_total",
        "concerts_holds_total",
        "concerts_holds_expired_total",
        'outcome="failure"',
        "concerts_celery_task_last_success_timestamp_seconds",
        "concerts_outbox_oldest_age_seconds",
        "histogram_quantile(0.95",
    ]:
        assert needed in queries, needed
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "prometheus", panel["title"]


def test_the_prometheus_config_parses():
    config = yaml.safe_load((ROOT / "ops" / "prometheus" / "prometheus.yml").read_text())

    assert config["global"]["scrape_interval"]
    assert all(job["static_configs"] for job in config["scrape_configs"])
