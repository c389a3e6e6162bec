from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WebhooksConfig(AppConfig):
    """Signed webhooks for integrators (docs/webhooks.md): a channel of the event outbox that
    POSTs each event to the endpoints subscribed to its type, retried for a day."""

    name = "webhooks"
    verbose_name = _("Webhooks")
