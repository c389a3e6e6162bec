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


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("health_checks", [True, False])
def test_a_connection_the_server_dropped_is_replaced(customer, health_checks):
    """With DB_CONN_HEALTH_CHECKS (the default) a persistent connection that the server has
    closed is replaced before the request uses it; without, it fails that one request with a
    503 to retry, and the next request gets a new one."""
    import MySQLdb
    from django.db import close_old_connections

    from tests.conftest import client_for

    if connection.vendor != "mysql":
        pytest.skip("kills a MariaDB connection")
    assert connection.settings_dict["CONN_HEALTH_CHECKS"] is True
    client = client_for(customer)
    assert client.get("/api/v1/accounts/me").status_code == 200
    database = connection.settings_dict
    killer = MySQLdb.connect(
        host=database["HOST"], port=int(database["PORT"]), user=database["USER"], password=""
    )
    killer.cursor().execute(f"KILL {connection.connection.thread_id()}")
    killer.close()

    connection.settings_dict["CONN_HEALTH_CHECKS"] = health_checks
    connection.health_check_enabled = health_checks  # (read when a connection opens)
    try:
        close_old_connections()  # what Django does at the start of every request
        first = client.get("/api/v1/accounts/me")
        close_old_connections()
        second = client.get("/api/v1/accounts/me")
    finally:
        connection.settings_dict["CONN_HEALTH_CHECKS"] = True
        connection.health_check_enabled = True

    if health_checks:
        assert first.status_code == 200
    else:
        assert first.status_code == 503
        assert first.json()["error"]["code"] == "service_unavailable"
        assert "Retry-After" in first
    assert second.status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/v1/concerts", "/api/v1/reservations"])
def test_an_unexpected_error_on_a_real_route_is_a_json_500(
    path, customer_client, monkeypatch, caplog
):
    """Through the project's own URLconf (handler500), not a test one."""

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr("concerts.selectors.concert_list", broken)
    monkeypatch.setattr("reservations.selectors.reservation_list_for_user", broken)
    customer_client.raise_request_exception = False

    response = customer_client.get(path)

    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "internal_error"
    assert "a bug" not in response.content.decode()


def test_docs_list_every_error_code_of_the_catalog_and_no_other():
    import re
    from pathlib import Path

    from config.openapi import error_catalog

    table = (Path(__file__).resolve().parents[1] / "docs" / "api.md").read_text()
    documented = {
        code: int(status)
        for status, code in re.findall(r"^\| (\d{3}) \| `([a-z_]+)` \|", table, re.MULTILINE)
    }

    assert documented == {code: error.status_code for code, error in error_catalog().items()}


def test_a_second_error_class_with_a_known_code_is_refused():
    from config.errors import DomainError

    with pytest.raises(TypeError, match="belongs to"):

        class AnotherValidationError(DomainError):
            code = "validation_error"
