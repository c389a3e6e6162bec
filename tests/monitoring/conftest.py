import pytest
from prometheus_client.parser import text_string_to_metric_families

TOKEN = "metrics-" + "k" * 40
MIDDLEWARE = "monitoring.middleware.MetricsMiddleware"


@pytest.fixture
def metrics_on(settings):
    """METRICS_TOKEN set, as settings.py does it: the middleware right after the request id."""
    settings.METRICS_TOKEN = TOKEN
    chain = [name for name in settings.MIDDLEWARE if name != MIDDLEWARE]
    chain.insert(chain.index("config.request_id.RequestIdMiddleware") + 1, MIDDLEWARE)
    settings.MIDDLEWARE = chain


def scrape_text(client) -> str:
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    return response.content.decode()


def scrape(client) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} of one authorised scrape."""
    samples = {}
    for family in text_string_to_metric_families(scrape_text(client)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)
