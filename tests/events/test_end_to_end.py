"""Issue 14's measure of done, end to end on the real services: 1,000 payments produce
1,000 payment.confirmed webhook deliveries and 1,000 confirmation emails, none twice."""

import pytest
from django.utils import timezone

from events.models import Event
from events.services import events_dispatch
from notifications.services import customer_messages_send
from payments.services import payment_create, wallet_charge
from tests.concerts.factories import ScheduleFactory
from tests.concurrency import make_customers
from tests.reservations.factories import held_reservation
from tests.webhooks.test_delivery import signature_valid
from webhooks.models import DeliveryStatus, WebhookDelivery
from webhooks.services import webhook_deliveries_run, webhook_endpoint_create

pytestmark = pytest.mark.django_db

PAYMENTS = 1000


def test_a_thousand_payments_reach_the_endpoint_and_the_customers_once_each(receiver, mailoutbox):
    endpoint = webhook_endpoint_create(url=receiver.url("/crm"), event_types=["payment.confirmed"])
    schedule = ScheduleFactory()
    customers = make_customers(PAYMENTS, prefix="e2e")
    for customer in customers:
        wallet_charge(user=customer, amount=200_000)
        reservation = held_reservation(user=customer, schedule=schedule)
        payment_create(user=customer, reservation_id=reservation.id)

    events_dispatch()
    while customer_messages_send():
        pass
    webhook_deliveries_run(now=timezone.now())

    confirmed = set(
        Event.objects.filter(type="payment.confirmed").values_list("event_id", flat=True)
    )
    assert len(confirmed) == PAYMENTS
    delivered = [request.event["id"] for request in receiver.received]
    assert sorted(delivered) == sorted(str(event_id) for event_id in confirmed)
    assert (
        WebhookDelivery.objects.filter(endpoint=endpoint, status=DeliveryStatus.DELIVERED).count()
        == PAYMENTS
    )
    assert all(signature_valid(endpoint.secret, r.headers, r.body) for r in receiver.received[:50])
    assert len(mailoutbox) == PAYMENTS
    assert sorted(mail.to[0] for mail in mailoutbox) == sorted(c.email for c in customers)
    assert len({mail.extra_headers.get("X-Event-Id") for mail in mailoutbox}) == PAYMENTS
