"""The webhook channel of the outbox relay (settings.EVENT_CHANNELS)."""

from django.utils import timezone

from events.models import Event

from .models import WebhookDelivery, WebhookEndpoint
from .services import deliveries_request_on_commit


def fan_out(event: Event) -> int:
    """One pending delivery per active endpoint subscribed to the event's type, in the
    relay's transaction (idempotent: a second fan-out of the event adds none). Delivery
    starts after the relay commits; nothing is sent from here. Returns how many endpoints."""
    endpoints = [
        endpoint.id
        for endpoint in WebhookEndpoint.objects.filter(active=True).only("id", "event_types")
        if endpoint.subscribes_to(event.type)
    ]
    if not endpoints:
        return 0
    now = timezone.now()
    WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(
                endpoint_id=endpoint_id,
                event=event,
                event_type=event.type,
                aggregate_type=event.aggregate_type,
                aggregate_id=event.aggregate_id,
                next_attempt_at=now,
            )
            for endpoint_id in endpoints
        ],
        ignore_conflicts=True,
    )
    deliveries_request_on_commit()
    return len(endpoints)
