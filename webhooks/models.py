import secrets

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from events.models import Event

from .types import EVENT_TYPE_NAMES

SECRET_PREFIX = "whsec_"


def secret_generate() -> str:
    """A signing secret: 256 random bits, prefixed so a leaked one is recognisable."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


class WebhookEndpoint(models.Model):
    """An integrator's URL that receives the events of the types it subscribed to, each
    signed with its secret (docs/webhooks.md)."""

    url = models.URLField(
        _("URL"),
        max_length=500,
        help_text=_(
            "http or https. Addresses in loopback, private, link-local and other "
            "non-public ranges are refused."
        ),
    )
    # Kept in clear: every delivery signs with it. Never logged; admin shows it masked,
    # except once right after the endpoint is made.
    secret = models.CharField(_("secret"), max_length=100, editable=False)
    event_types = models.JSONField(
        _("event types"),
        default=list,
        blank=True,
        help_text=_("None chosen: every type, including types added later."),
    )
    active = models.BooleanField(_("active"), default=True)
    description = models.CharField(
        _("note"),
        max_length=200,
        blank=True,
        help_text=_("Who receives it and why; shown in lists."),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("webhook endpoint")
        verbose_name_plural = _("webhook endpoints")
        ordering = ["id"]

    def __str__(self) -> str:
        return self.description or self.url

    def subscribes_to(self, event_type: str) -> bool:
        return not self.event_types or event_type in self.event_types

    def clean(self) -> None:
        from .transport import UnsafeUrl, url_check

        unknown = sorted(set(self.event_types or []) - EVENT_TYPE_NAMES)
        if not isinstance(self.event_types, list) or unknown:
            raise ValidationError(
                {"event_types": _("Unknown event types: %(types)s.") % {"types": unknown}}
            )
        if self.url:
            try:
                url_check(self.url)
            except UnsafeUrl as problem:
                raise ValidationError({"url": str(problem)}) from None


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    DELIVERED = "delivered", _("Delivered")
    FAILED = "failed", _("Failed")


class WebhookDelivery(models.Model):
    """One event on its way to one endpoint: made by the outbox relay (webhooks.channel) in
    its transaction, then POSTed until the endpoint answers 2xx or the retries run out.

    `aggregate_type`/`aggregate_id` repeat the event's, so the claim can tell, from an index,
    whether an earlier event of the same aggregate still waits for this endpoint (deliveries
    go out in order per aggregate per endpoint). A claimed delivery keeps `pending` with
    `next_attempt_at` pushed forward as a lease: should the worker die, the lease runs out
    and another worker sends it again (at least once)."""

    endpoint = models.ForeignKey(
        WebhookEndpoint,
        on_delete=models.CASCADE,
        related_name="deliveries",
        verbose_name=_("endpoint"),
    )
    event = models.ForeignKey(
        Event, on_delete=models.CASCADE, related_name="+", verbose_name=_("event")
    )
    event_type = models.CharField(_("event type"), max_length=60)
    aggregate_type = models.CharField(_("aggregate type"), max_length=30)
    aggregate_id = models.CharField(_("aggregate id"), max_length=40)
    status = models.CharField(
        _("status"), max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt at"))
    first_attempt_at = models.DateTimeField(_("first attempt at"), null=True, blank=True)
    last_attempt_at = models.DateTimeField(_("last attempt at"), null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(
        _("last status code"), null=True, blank=True
    )
    last_response = models.TextField(_("last response"), blank=True)
    last_error = models.CharField(_("last error"), max_length=300, blank=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["endpoint", "event"],
                name="webhook_delivery_once_per_endpoint",
                violation_error_message=_("This event already has a delivery to this endpoint."),
            ),
            models.CheckConstraint(
                condition=~Q(status="delivered") | Q(delivered_at__isnull=False),
                name="webhook_delivery_delivered_at",
                violation_error_message=_("A delivered delivery has its time of delivery."),
            ),
        ]
        indexes = [
            # The claim: pending deliveries whose time has come.
            models.Index(fields=["status", "next_attempt_at"], name="webhook_delivery_due"),
            # "Does an earlier event of this aggregate still wait for this endpoint?"
            models.Index(
                fields=["endpoint", "aggregate_type", "aggregate_id", "status", "event"],
                name="webhook_delivery_chain",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} → {self.endpoint} ({self.get_status_display()})"
