"""A slow, hung or dead Redis stays contained (config/redis.py): calls that need Redis answer
503 at once, calls that do not lose no time to it, and the login throttle never fails open.
The real SIGSTOP of a real Redis under load is in bin/chaos."""

import logging
import socket
import threading
import uuid

import pytest
from django.test import override_settings

from payments.services import wallet_charge
from queueing.models import QueueAdmission
from tests.concerts.factories import ConcertFactory, ScheduleFactory
from tests.conftest import admitted_queue_token, client_for
from tests.reservations.factories import held_reservation

pytestmark = pytest.mark.django_db


class HungRedis:
    """A server that accepts connections and never answers: what a SIGSTOPped Redis is to
    its clients. Counts the connections it accepted."""

    def __init__(self):
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(128)
        self.port = self.listener.getsockname()[1]
        self.accepted: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.accepted.append(connection)

    def caches(self, settings) -> dict:
        url = f"redis://127.0.0.1:{self.port}/0"
        return {name: {**config, "LOCATION": url} for name, config in settings.CACHES.items()}

    def close(self):
        self.listener.close()
        for connection in self.accepted:
            connection.close()


@pytest.fixture
def hung_redis():
    server = HungRedis()
    yield server
    server.close()


def test_a_hung_redis_costs_queue_calls_one_timeout_then_nothing(
    hung_redis, customer_client, settings, caplog
):
    concert = ConcertFactory()

    with override_settings(CACHES=hung_redis.caches(settings)), caplog.at_level(logging.WARNING):
        answers = [customer_client.post(f"/api/v1/concerts/{concert.id}/queue") for _ in range(5)]

    assert [a.status_code for a in answers] == [503] * 5
    assert {a.json()["error"]["code"] for a in answers} == {"service_unavailable"}
    assert all(int(a["Retry-After"]) > 0 for a in answers)
    # Only the first call waited for the hung server; the breaker answered the other four.
    assert len(hung_redis.accepted) == 1
    outage_lines = [r for r in caplog.records if "is not answering" in r.getMessage()]
    assert len(outage_lines) == 1  # logged once per outage, not a traceback per request


def test_money_paths_do_not_wait_for_a_hung_redis(
    hung_redis, customer, settings, django_capture_on_commit_callbacks
):
    concert = ConcertFactory()
    schedule = ScheduleFactory(concert=concert)
    token = admitted_queue_token(user=customer, concert=concert)  # on the real Redis
    wallet_charge(user=customer, amount=500_000)
    reservation = held_reservation(user=customer, schedule=schedule, seat_prices=(100_000,))
    client = client_for(customer)
    assert token

    with override_settings(CACHES=hung_redis.caches(settings)):
        charged = client.post(
            "/api/v1/wallet/charges",
            {"amount": 1_000},
            format="json",
            HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()),
        )
        with django_capture_on_commit_callbacks(execute=True):
            paid = client.post(f"/api/v1/reservations/{reservation.id}/payment")
        listed = client.get("/api/v1/reservations")

    assert (charged.status_code, paid.status_code, listed.status_code) == (201, 201, 200)
    # The paid customer's queue slot could not be freed: left for the tick, not lost.
    assert QueueAdmission.objects.get(user_id=customer.id).release_pending
    assert len(hung_redis.accepted) <= 1


def test_the_login_throttle_fails_closed_when_redis_is_down(api_client, settings):
    settings.AUTH_THROTTLE_RATE = "3/minute"
    dead = {
        name: {**config, "LOCATION": "redis://127.0.0.1:1/0"}
        for name, config in settings.CACHES.items()
    }
    attempt = {"email": f"{uuid.uuid4().hex}@example.com", "password": "wrong-password-123"}

    with override_settings(CACHES=dead):
        codes = [
            api_client.post("/api/v1/accounts/token", attempt, format="json").status_code
            for _ in range(5)
        ]

    assert codes == [400, 400, 400, 429, 429]


def test_gunicorns_own_errors_are_in_the_error_shape():
    import json

    from gunicorn import util

    from config.gunicorn_errors import install

    install()
    ours, theirs = socket.socketpair()
    util.write_error(ours, 431, "Request Header Fields Too Large", "Error parsing headers")
    ours.close()
    raw = theirs.recv(65536).decode("latin1")
    theirs.close()
    head, _, body = raw.partition("\r\n\r\n")

    assert head.startswith("HTTP/1.1 431 ")
    assert "Content-Type: application/json" in head
    assert json.loads(body)["error"]["code"] == "request_headers_too_large"
