from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class EventsConfig(AppConfig):
    """The transactional outbox (docs/events.md): every committed fact, written as an event
    row in the transaction that made it, then relayed to the channels (webhooks, emails)."""

    name = "events"
    verbose_name = _("Events")
