"""Webhook deliveries against a real HTTP receiver: fan-out, signatures, retries, order per
aggregate, a worker dying mid-batch, and a thousand events."""

import hashlib
import hmac
import json
import random
from collections import defaultdict
from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from events.models import Event
from webhooks import services
from webhooks.channel import fan_out
from webhooks.models import DeliveryStatus, WebhookDelivery
from webhooks.services import webhook_deliveries_run, webhook_endpoint_create
from webhooks.transport import Answer

from .conftest import record_events

pytestmark = pytest.mark.django_db


def signature_valid(secret: str, headers: dict, body: bytes) -> bool:
    """What docs/webhooks.md tells integrators to do."""
    parts = dict(item.split("=", 1) for item in headers["X-Signature"].split(","))
    expected = hmac.new(
        secret.encode(), parts["t"].encode() + b"." + body, hashlib.sha256
    ).hexdigest()
    return hmac.compare_digest(expected, parts["v1"])


def run_until_settled(*, start, step=timedelta(hours=1), rounds=40) -> int:
    """Runs with the clock moved forward by `step` each time, until nothing is pending."""
    now, runs = start, 0
    while WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING).exists():
        assert runs < rounds, "deliveries still pending"
        webhook_deliveries_run(now=now)
        now += step
        runs += 1
    return runs


def test_a_delivery_per_subscribed_active_endpoint_and_none_twice(receiver):
    everything = webhook_endpoint_create(url=receiver.url("/all"))
    payments = webhook_endpoint_create(url=receiver.url("/pay"), event_types=["payment.confirmed"])
    webhook_endpoint_create(url=receiver.url("/off"), active=False)
    webhook_endpoint_create(url=receiver.url("/wallet"), event_types=["wallet.charged"])

    held, paid = record_events(
        ("reservation.held", ("reservation", 1), {}),
        ("payment.confirmed", ("reservation", 1), {}),
    )
    for event in (held, paid):  # the relay's fan-out again: nothing more
        fan_out(Event.objects.get(id=event.id))

    made = sorted(
        WebhookDelivery.objects.values_list("endpoint__url", "event_type", "status", "attempts")
    )
    assert made == sorted(
        [
            (everything.url, "reservation.held", "pending", 0),
            (everything.url, "payment.confirmed", "pending", 0),
            (payments.url, "payment.confirmed", "pending", 0),
        ]
    )


@override_settings(WEBHOOK_TIMEOUT_SECONDS=0.5)
def test_failing_timing_out_and_slow_receivers_get_every_event_in_order_signed(receiver):
    def behaviour(path, nth):
        if path == "/fails":
            return (500, 0) if nth <= 2 else (200, 0)  # fails twice, then recovers
        if path == "/times-out":
            return 200, (0.8 if nth == 1 else 0)  # the first answer comes too late
        return 200, 0.1  # /slow: always answers, slowly

    receiver.behaviour = behaviour
    endpoints = {
        path: webhook_endpoint_create(url=receiver.url(path))
        for path in ("/fails", "/times-out", "/slow")
    }
    kinds = ["reservation.held", "payment.confirmed", "reservation.cancelled"]
    events = record_events(
        *[
            (kind, ("reservation", reservation), {"reservation_id": reservation, "n": n})
            for n, kind in enumerate(kinds)
            for reservation in (11, 12, 13, 14)
        ]
    )

    run_until_settled(start=timezone.now())

    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"delivered"}
    order = {str(event.event_id): index for index, event in enumerate(events)}
    for path, endpoint in endpoints.items():
        requests = receiver.at(path)
        answered = {request.event["id"] for request in requests if request.status == 200}
        assert answered == set(order), path
        for request in requests:
            assert signature_valid(endpoint.secret, request.headers, request.body)
            assert request.headers["X-Event-Id"] == request.event["id"]
            assert request.headers["Content-Type"] == "application/json"
        per_aggregate = defaultdict(list)
        for request in requests:
            per_aggregate[request.event["aggregate"]["id"]].append(order[request.event["id"]])
        for aggregate, sent in per_aggregate.items():
            # Every try of an event comes before the first try of the next one.
            assert sent == sorted(sent), (path, aggregate)
            assert [kinds[order_index // 4] for order_index in dict.fromkeys(sent)] == kinds
    assert len(receiver.at("/fails")) == 3 * len(events)
    assert len(receiver.at("/slow")) == len(events)
    first = receiver.at("/slow")[0].event
    event = Event.objects.get(event_id=first["id"])
    assert first == {
        "id": str(event.event_id),
        "type": event.type,
        "version": 1,
        "occurred_at": timezone.localtime(event.occurred_at).isoformat(),
        "aggregate": {"type": "reservation", "id": event.aggregate_id},
        "data": event.payload,
    }


def test_the_backoff_grows_to_an_hour_and_stops_a_day_after_the_first_attempt(receiver):
    webhook_endpoint_create(url=receiver.url("/down"))
    record_events(("wallet.charged", ("wallet", 7), {"amount": 10_000}))
    delivery = WebhookDelivery.objects.get()
    down = lambda claim: Answer(status_code=503, body="down")  # noqa: E731

    now = first = timezone.now()
    waits = []
    while True:
        assert webhook_deliveries_run(now=now, send=down) == 1
        delivery.refresh_from_db()
        if delivery.status != DeliveryStatus.PENDING:
            break
        waits.append(delivery.next_attempt_at - now)
        # Not due a second before its time.
        assert webhook_deliveries_run(now=delivery.next_attempt_at - timedelta(seconds=1)) == 0
        now = delivery.next_attempt_at

    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.last_status_code == 503 and delivery.last_response == "down"
    assert delivery.first_attempt_at == first
    assert now == first + timedelta(hours=24)  # the last try at the end of the day
    assert delivery.attempts == len(waits) + 1
    assert timedelta(seconds=5) <= waits[0] <= timedelta(seconds=10)
    assert timedelta(seconds=10) <= waits[1] <= timedelta(seconds=20)
    assert timedelta(seconds=20) <= waits[2] <= timedelta(seconds=40)
    assert max(waits) <= timedelta(hours=1)
    assert timedelta(minutes=30) <= waits[12] <= timedelta(hours=1)
    assert 25 <= delivery.attempts <= 60
    assert receiver.received == []


def test_backoff_has_jitter_within_its_bounds():
    rng = random.Random(14)
    for attempts, ceiling in [(1, 10), (2, 20), (5, 160), (9, 2560), (10, 3600), (30, 3600)]:
        waits = {services.backoff(attempts, rng=rng).total_seconds() for _ in range(50)}
        assert all(ceiling / 2 <= wait <= ceiling for wait in waits)
        assert len(waits) > 40  # spread out, not one value


def test_a_worker_killed_after_the_claim_loses_nothing(receiver, monkeypatch):
    webhook_endpoint_create(url=receiver.url("/hook"))
    events = record_events(
        *[("payment.confirmed", ("reservation", n), {"n": n}) for n in range(10)]
    )
    now = timezone.now()

    def killed(**kwargs):
        raise SystemExit("worker killed")

    with monkeypatch.context() as patched:
        patched.setattr(services, "delivery_record", killed)
        with pytest.raises(SystemExit):
            webhook_deliveries_run(now=now)
    claimed = list(WebhookDelivery.objects.filter(attempts=1).values_list("id", flat=True))
    assert claimed  # taken, some of them POSTed, none recorded
    assert WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING).count() == 10

    # While the lease runs, another worker leaves the claimed ones alone.
    webhook_deliveries_run(now=now + timedelta(seconds=30))
    assert set(
        WebhookDelivery.objects.filter(id__in=claimed).values_list("status", "attempts")
    ) == {("pending", 1)}

    webhook_deliveries_run(now=now + services.lease() + timedelta(seconds=1))

    assert WebhookDelivery.objects.filter(status=DeliveryStatus.DELIVERED).count() == 10
    assert {request.event["id"] for request in receiver.received} == {
        str(event.event_id) for event in events
    }


def test_a_thousand_events_make_a_thousand_deliveries_none_twice(receiver):
    endpoint = webhook_endpoint_create(url=receiver.url("/crm"), event_types=["payment.confirmed"])
    events = record_events(
        *[
            ("payment.confirmed", ("reservation", n), {"reservation_id": n, "amount": 165_000})
            for n in range(1000)
        ]
    )

    webhook_deliveries_run(now=timezone.now())

    assert WebhookDelivery.objects.filter(status=DeliveryStatus.DELIVERED).count() == 1000
    received = [request.event["id"] for request in receiver.received]
    assert len(received) == 1000
    assert set(received) == {str(event.event_id) for event in events}
    assert all(signature_valid(endpoint.secret, r.headers, r.body) for r in receiver.received[:20])


def test_a_dead_endpoint_does_not_hold_up_another(receiver):
    """Its POSTs time out, but at most four at a time: the healthy endpoint's deliveries
    go out meanwhile, in the same run."""
    receiver.behaviour = lambda path, nth: (200, 1.5 if path == "/dead" else 0)
    webhook_endpoint_create(url=receiver.url("/dead"), event_types=["reservation.held"])
    webhook_endpoint_create(url=receiver.url("/alive"), event_types=["payment.confirmed"])
    record_events(
        *[("reservation.held", ("reservation", n), {}) for n in range(8)],
        *[("payment.confirmed", ("reservation", 100 + n), {}) for n in range(40)],
    )

    with override_settings(WEBHOOK_TIMEOUT_SECONDS=0.3):
        webhook_deliveries_run(now=timezone.now())

    alive = WebhookDelivery.objects.filter(endpoint__url__endswith="/alive")
    dead = WebhookDelivery.objects.filter(endpoint__url__endswith="/dead")
    assert set(alive.values_list("status", flat=True)) == {"delivered"}
    assert set(dead.values_list("status", flat=True)) == {"pending"}
    assert "No answer within" in dead.first().last_error


def test_the_body_keeps_korean_text_as_utf8(receiver):
    webhook_endpoint_create(url=receiver.url("/ko"))
    record_events(("sale.opened", ("concert", 3), {"title": "아이유 콘서트"}))

    webhook_deliveries_run(now=timezone.now())

    (request,) = receiver.received
    assert "아이유 콘서트".encode() in request.body
    assert json.loads(request.body)["data"] == {"title": "아이유 콘서트"}
