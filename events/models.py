import uuid

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class Event(models.Model):
    """One committed fact: written by the service that made it, in its transaction, so that
    rolled-back work leaves none and committed work exactly one (invariant 12).

    `id` orders events (per aggregate, it is the order the facts happened: a later fact of
    the same reservation commits after the earlier one, which its row lock serialised).
    `event_id` is the identity receivers deduplicate by. `dispatched_at` is set once the
    relay has handed the event to every channel (webhook deliveries, emails), in the same
    transaction as their rows."""

    event_id = models.UUIDField(_("event id"), unique=True, default=uuid.uuid4, editable=False)
    type = models.CharField(_("type"), max_length=60)
    version = models.PositiveSmallIntegerField(_("version"), default=1)
    occurred_at = models.DateTimeField(_("occurred at"))
    aggregate_type = models.CharField(_("aggregate type"), max_length=30)
    aggregate_id = models.CharField(_("aggregate id"), max_length=40)
    payload = models.JSONField(_("payload"), default=dict)
    dispatched_at = models.DateTimeField(_("dispatched at"), null=True, blank=True)

    class Meta:
        verbose_name = _("event")
        verbose_name_plural = _("events")
        ordering = ["-id"]
        indexes = [
            # The relay's claim: undispatched events, oldest first.
            models.Index(fields=["dispatched_at", "id"], name="event_undispatched"),
            models.Index(fields=["aggregate_type", "aggregate_id", "id"], name="event_aggregate"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(type=""),
                name="event_type_given",
                violation_error_message=_("An event has a type."),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.aggregate_type}:{self.aggregate_id} ({self.event_id})"
