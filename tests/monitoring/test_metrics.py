"""GET /metrics (monitoring/, docs/metrics.md): off without METRICS_TOKEN, only the token's
holder may scrape, and a scrape after real API calls shows the requests and the sale's numbers
as they are in the database and Redis."""

import os
import uuid
from datetime import timedelta

import pytest
from celery import shared_task
from django.test import override_settings
from django.utils import timezone

from concerts.models import Seat
from events.models import Event
from events.tasks import dispatch_events
from queueing.services import queue_admit_tick
from reservations.models import Reservation
from tests.accounts.factories import UserFactory
from tests.concerts.factories import ScheduleFactory, SeatFactory
from tests.conftest import client_for
from tests.monitoring.conftest import MIDDLEWARE, TOKEN, scrape, value
from tests.test_redis_outages import HungRedis

pytestmark = pytest.mark.django_db


def test_without_a_token_there_is_no_metrics_path(api_client, settings):
    settings.METRICS_TOKEN = ""
    assert MIDDLEWARE not in settings.MIDDLEWARE

    response = api_client.get("/metrics", HTTP_AUTHORIZATION="Bearer anything")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    "authorization, status, code",
    [
        (None, 401, "not_authenticated"),
        ("Bearer ", 401, "not_authenticated"),
        (f"Basic {TOKEN}", 401, "not_authenticated"),
        ("Bearer wrong-token", 403, "permission_denied"),
        (f"Bearer {TOKEN}x", 403, "permission_denied"),
        (f"Bearer {TOKEN[:-1]}", 403, "permission_denied"),
    ],
)
def test_a_scrape_needs_the_exact_token(api_client, metrics_on, authorization, status, code):
    headers = {} if authorization is None else {"HTTP_AUTHORIZATION": authorization}

    response = api_client.get("/metrics", **headers)

    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert "concerts_http_requests" not in response.content.decode()


def test_a_customers_token_does_not_open_metrics_and_the_metrics_token_opens_no_api(
    customer_client, api_client, metrics_on
):
    assert customer_client.get("/metrics").status_code == 403
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert api_client.get("/api/v1/accounts/me").status_code == 401


def test_a_scrape_is_answered_whatever_the_host_header(api_client, metrics_on):
    """Prometheus scrapes by address; ALLOWED_HOSTS would refuse it."""
    response = api_client.get(
        "/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}", HTTP_HOST="10.1.2.3:8000"
    )

    assert response.status_code == 200


def test_a_sale_through_the_api_shows_in_the_scrape(
    api_client, metrics_on, django_capture_on_commit_callbacks
):
    schedule = ScheduleFactory(concert__queue_max_active=1)
    concert = schedule.concert
    for number in range(1, 9):
        SeatFactory(schedule=schedule, number=number, price=100_000)
    before = scrape(api_client)

    # A customer charges, enters the queue, is admitted, holds two seats and pays.
    buyer = client_for(UserFactory())
    charged = buyer.post(
        "/api/v1/wallet/charges",
        {"amount": 500_000},
        format="json",
        HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()),
    )
    assert charged.status_code == 201
    entered = buyer.post(f"/api/v1/concerts/{concert.id}/queue")
    assert entered.status_code in (200, 201), entered.content
    queue_admit_tick(concert=concert)
    buyer.credentials(
        HTTP_AUTHORIZATION=buyer._credentials["HTTP_AUTHORIZATION"],
        HTTP_X_QUEUE_TOKEN=entered.json()["token"],
    )
    seats = [seat.id for seat in Seat.objects.filter(schedule=schedule).order_by("number")]
    with django_capture_on_commit_callbacks(execute=True):
        held = buyer.post(
            "/api/v1/reservations",
            {"schedule_id": schedule.id, "seat_ids": seats[:2]},
            format="json",
        )
    assert held.status_code == 201, held.content
    with django_capture_on_commit_callbacks(execute=True):
        paid = buyer.post(
            f"/api/v1/reservations/{held.json()['id']}/payment",
            HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()),
        )
    assert paid.status_code == 201, paid.content
    # A second customer is admitted and holds a seat that then runs out unpaid; a third waits
    # (one customer may shop at a time).
    second = client_for(UserFactory())
    entered = second.post(f"/api/v1/concerts/{concert.id}/queue")
    queue_admit_tick(concert=concert)
    second.credentials(
        HTTP_AUTHORIZATION=second._credentials["HTTP_AUTHORIZATION"],
        HTTP_X_QUEUE_TOKEN=entered.json()["token"],
    )
    with django_capture_on_commit_callbacks(execute=True):
        lapsing = second.post(
            "/api/v1/reservations",
            {"schedule_id": schedule.id, "seat_ids": seats[2:3]},
            format="json",
        )
    assert lapsing.status_code == 201, lapsing.content
    ended = timezone.now() - timedelta(seconds=1)
    Reservation.objects.filter(id=lapsing.json()["id"]).update(expires_at=ended)
    Seat.objects.filter(id=seats[2]).update(hold_expires_at=ended)  # lazy expiry, not swept
    third = client_for(UserFactory())
    assert third.post(f"/api/v1/concerts/{concert.id}/queue").status_code in (200, 201)
    queue_admit_tick(concert=concert)

    after = scrape(api_client)

    def grew(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    hold_route = {"route": "api/v1/reservations", "method": "POST"}
    pay_route = {
        "route": "api/v1/reservations/<int:reservation_id>/payment",
        "method": "POST",
    }
    enter_route = {"route": "api/v1/concerts/<int:concert_id>/queue", "method": "POST"}
    assert grew("concerts_http_requests_total", **hold_route, status="201") == 2
    assert grew("concerts_http_requests_total", **pay_route, status="201") == 1
    assert grew("concerts_http_requests_total", route="metrics", method="GET", status="200") == 0
    enters = sum(
        grew("concerts_http_requests_total", **enter_route, status=status)
        for status in ("200", "201")
    )
    assert enters == 3
    assert grew("concerts_http_request_duration_seconds_count", **hold_route) == 2
    assert grew("concerts_http_request_duration_seconds_count", **pay_route) == 1
    assert grew("concerts_http_request_duration_seconds_bucket", **pay_route, le="+Inf") == 1
    assert grew("concerts_http_request_duration_seconds_sum", **pay_route) > 0
    # No raw path with an id ever becomes a label.
    routes = {dict(labels).get("route", "") for _, labels in after}
    assert not any(str(concert.id) in route.split("/") for route in routes)

    c = str(concert.id)
    amount = paid.json()["amount"]
    assert value(after, "concerts_concert_info", concert=c, title=concert.title) == 1
    assert value(after, "concerts_seats", concert=c, state="sold") == 2
    assert value(after, "concerts_seats", concert=c, state="held") == 0
    assert value(after, "concerts_seats", concert=c, state="available") == 6
    assert value(after, "concerts_payments_total", concert=c) == 1
    assert value(after, "concerts_revenue_won_total", concert=c) == amount == 200_000 + 4_000
    assert value(after, "concerts_refunded_won_total", concert=c) == 0
    assert value(after, "concerts_holds_total", concert=c, source="queue") == 2
    assert value(after, "concerts_holds_expired_total", concert=c, source="queue") == 1
    assert value(after, "concerts_queue_waiting", concert=c) == 1
    assert value(after, "concerts_queue_admitted", concert=c) == 1
    # The queue's own measure: admissions over the last minute, or over the seconds since
    # admission began (two admissions within a few seconds here).
    assert value(after, "concerts_queue_admissions_per_minute", concert=c) >= 2
    undispatched = Event.objects.filter(dispatched_at__isnull=True).count()
    assert value(after, "concerts_outbox_undispatched") == undispatched
    assert value(after, "concerts_metrics_read_failed", part="database") == 0
    assert value(after, "concerts_metrics_read_failed", part="queue") == 0


def test_the_outbox_lag_is_the_age_of_the_oldest_undispatched_event(api_client, metrics_on):
    Event.objects.create(
        type="test.old",
        occurred_at=timezone.now() - timedelta(minutes=5),
        aggregate_type="test",
        aggregate_id="1",
    )

    samples = scrape(api_client)

    assert value(samples, "concerts_outbox_undispatched") >= 1
    assert 300 <= value(samples, "concerts_outbox_oldest_age_seconds") < 400


@shared_task(name="tests.monitoring.failing_task")
def failing_task():
    raise RuntimeError("this task fails on purpose")


def test_celery_task_runs_failures_and_last_success_are_counted(api_client, metrics_on):
    before = scrape(api_client)
    started = timezone.now().timestamp()

    dispatch_events.apply()
    dispatch_events.apply()
    failing_task.apply()

    after = scrape(api_client)
    dispatched = {"task": "events.tasks.dispatch_events"}
    failing = {"task": "tests.monitoring.failing_task"}
    for name, labels, runs in [
        ("concerts_celery_task_runs_total", {**dispatched, "outcome": "success"}, 2),
        ("concerts_celery_task_runs_total", {**failing, "outcome": "failure"}, 1),
        ("concerts_celery_task_runs_total", {**failing, "outcome": "success"}, 0),
    ]:
        assert value(after, name, **labels) - value(before, name, **labels) == runs
    last = value(after, "concerts_celery_task_last_success_timestamp_seconds", **dispatched)
    assert last >= started
    assert value(after, "concerts_celery_task_last_success_timestamp_seconds", **failing) == 0


def test_503s_are_counted_by_their_cause(api_client, customer_client, metrics_on, settings):
    schedule = ScheduleFactory()
    hung = HungRedis()
    before = scrape(api_client)
    try:
        with override_settings(CACHES=hung.caches(settings)):
            answers = [
                customer_client.post(f"/api/v1/concerts/{schedule.concert_id}/queue")
                for _ in range(3)
            ]
            during = scrape(api_client)
    finally:
        hung.close()

    assert [a.status_code for a in answers] == [503] * 3
    causes = {
        cause: value(during, "concerts_dependency_unavailable_total", cause=cause)
        - value(before, "concerts_dependency_unavailable_total", cause=cause)
        for cause in ("redis_timeout", "redis_circuit_open")
    }
    # The first call waited for the hung server; the breaker answered the other two at once.
    assert causes == {"redis_timeout": 1, "redis_circuit_open": 2}
    # The scrape still answers, without the queue's numbers, and says which part is missing.
    assert value(during, "concerts_metrics_read_failed", part="queue") == 1
    assert value(during, "concerts_metrics_read_failed", part="database") == 0
    assert value(during, "concerts_seats", concert=str(schedule.concert_id), state="sold") == 0


def test_a_worker_elsewhere_serves_its_task_counts_with_the_same_token(settings):
    """METRICS_WORKER_PORT: the Celery worker's own /metrics (monitoring/worker.py)."""
    import http.client

    from monitoring.worker import worker_metrics_serve
    from ops.servers import free_port

    settings.METRICS_TOKEN = TOKEN
    dispatch_events.apply()
    port = free_port()
    server = worker_metrics_serve(bind="127.0.0.1", port=port)

    def get(path, authorization=None):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        headers = {"Authorization": authorization} if authorization else {}
        try:
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            return response.status, response.read().decode()
        finally:
            connection.close()

    try:
        missing, wrong = get("/metrics"), get("/metrics", "Bearer nope")
        elsewhere = get("/other", f"Bearer {TOKEN}")
        status, text = get("/metrics", f"Bearer {TOKEN}")
    finally:
        server.shutdown()
        server.server_close()

    assert (missing[0], wrong[0], elsewhere[0]) == (401, 403, 404)
    assert '"code": "permission_denied"' in wrong[1]
    assert status == 200
    assert (
        'concerts_celery_task_runs_total{outcome="success",task="events.tasks.dispatch_events"}'
        in text
    )


def test_production_refuses_a_short_metrics_token_and_installs_the_middleware_with_a_long_one():
    import subprocess
    import sys

    from tests.test_settings import ROOT, SAFE

    def middleware_with(token: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-c", "from config import settings; print(settings.MIDDLEWARE[1])"],
            cwd=ROOT,
            env={**os.environ, **SAFE, "METRICS_TOKEN": token},
            capture_output=True,
            text=True,
        )

    short, long = middleware_with("too-short"), middleware_with(TOKEN)

    assert short.returncode != 0 and "METRICS_TOKEN" in short.stderr
    assert (long.returncode, long.stdout.strip()) == (0, MIDDLEWARE)
