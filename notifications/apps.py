from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class NotificationsConfig(AppConfig):
    """Messages to customers (docs/notifications.md): one row per message, made by the event
    relay in its transaction (channel.fan_out), then sent by a worker exactly once."""

    name = "notifications"
    verbose_name = _("Customer notifications")
