"""The benchmark's ceiling endpoint (config/benchmark.py) exists only when asked for."""

from django.conf import settings
from rest_framework.test import APIRequestFactory, force_authenticate

from config.benchmark import NoopView


def test_the_ceiling_endpoint_is_off_by_default(customer_client):
    assert settings.BENCHMARK_ENDPOINTS is False

    response = customer_client.get("/api/v1/_bench/noop")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_the_ceiling_endpoint_needs_a_customer_and_does_nothing(
    customer, django_assert_num_queries
):
    view = NoopView.as_view()
    anonymous = view(APIRequestFactory().get("/api/v1/_bench/noop"))
    request = APIRequestFactory().get("/api/v1/_bench/noop")
    force_authenticate(request, user=customer)

    with django_assert_num_queries(0):
        response = view(request)

    assert anonymous.status_code == 401
    assert (response.status_code, response.data) == (200, {"ok": True})
