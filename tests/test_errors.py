import pytest
from django.db import connection
from django.test import override_settings
from django.urls import path
from rest_framework.views import APIView

from tests.concerts.factories import ConcertFactory


class Boom(APIView):
    authentication_classes: list = []
    permission_classes: list = []

    def get(self, request):
        raise RuntimeError("a bug")


# This module doubles as a URLconf: the project's handlers plus one view with a bug in it.
urlpatterns = [path("api/v1/boom", Boom.as_view())]
handler500 = "config.errors.json_server_error"


@pytest.mark.urls("tests.test_errors")
def test_an_unexpected_error_is_a_500_in_the_error_shape(client):
    client.raise_request_exception = False

    response = client.get("/api/v1/boom")

    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    assert "a bug" not in response.content.decode()  # no internals leak to clients


def dead_redis_caches(settings):
    return {
        name: {**config, "LOCATION": "redis://127.0.0.1:1/0"}
        for name, config in settings.CACHES.items()
    }


@pytest.mark.django_db
def test_healthz_reports_each_dependency(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}


@pytest.mark.django_db
def test_healthz_answers_probes_by_ip_address_whatever_allowed_hosts_says(client, settings):
    settings.ALLOWED_HOSTS = ["tickets.example.com"]

    assert client.get("/healthz", HTTP_HOST="10.0.3.7:8000").status_code == 200
    assert client.get("/api/v1/concerts", HTTP_HOST="10.0.3.7:8000").status_code == 400


@pytest.mark.django_db
def test_healthz_is_503_naming_redis_when_redis_is_down(client, settings):
    with override_settings(CACHES=dead_redis_caches(settings)):
        response = client.get("/healthz")

    assert response.status_code == 503
    assert response["Retry-After"]
    error = response.json()["error"]
    assert error["code"] == "service_unavailable"
    assert error["details"] == {"database": "ok", "redis": "unreachable"}


@pytest.mark.django_db
def test_healthz_is_503_naming_the_database_when_it_is_down(client, monkeypatch):
    def refuse(*args, **kwargs):
        raise connection.Database.OperationalError(2003, "Can't connect to MySQL server")

    # The database driver refusing to connect, as it does when MariaDB is stopped.
    connection.close()
    monkeypatch.setattr(connection, "get_new_connection", refuse)

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["error"]["details"] == {"database": "unreachable", "redis": "ok"}


@pytest.mark.django_db
def test_the_catalog_still_answers_from_the_database_when_redis_is_down(client, settings):
    concert = ConcertFactory()

    with override_settings(CACHES=dead_redis_caches(settings)):
        response = client.get(f"/api/v1/concerts/{concert.id}")

    assert response.status_code == 200
    assert response.json()["id"] == concert.id


def test_non_api_404s_stay_html(client):
    response = client.get("/no-such-page")

    assert response.status_code == 404
    assert not response["Content-Type"].startswith("application/json")


class BrokenQuery(APIView):
    authentication_classes: list = []
    permission_classes: list = []

    def get(self, request):
        with connection.cursor() as cursor:
            cursor.execute("SELECT no_such_column FROM concerts_concert")


urlpatterns.append(path("api/v1/broken", BrokenQuery.as_view()))


@pytest.mark.urls("tests.test_errors")
@pytest.mark.django_db
def test_a_query_bug_is_a_500_not_an_outage(client):
    client.raise_request_exception = False

    response = client.get("/api/v1/broken")

    # mysqlclient raises OperationalError for an unknown column; it is a bug, not a 503.
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"


def test_won_amounts_read_naturally():
    from config.money import format_won

    assert [format_won(v) for v in (0, 165_000, -330_000, None)] == [
        "₩0",
        "₩165,000",
        "-₩330,000",
        "—",
    ]
