from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from events.models import Event


class MessageChannel(models.TextChoices):
    EMAIL = "email", _("Email")
    SMS = "sms", _("SMS / KakaoTalk")


class MessageKind(models.TextChoices):
    BOOKING_CONFIRMED = "booking_confirmed", _("Booking confirmed")
    BOOKING_CANCELLED = "booking_cancelled", _("Booking cancelled")
    BOOKING_REFUNDED = "booking_refunded", _("Booking refunded")
    WAITLIST_OFFER = "waitlist_offer", _("Waitlist offer")
    HOLD_EXPIRED = "hold_expired", _("Hold expired")


class MessageStatus(models.TextChoices):
    PENDING = "pending", _("pending")
    SENDING = "sending", _("sending")
    SENT = "sent", _("sent")
    FAILED = "failed", _("failed")


class CustomerMessage(models.Model):
    """One message to one customer about one event, on one channel: made by the relay in the
    transaction that dispatches the event (so a rolled-back fact never has one, and a
    committed one has exactly one: the unique constraint), then sent from this row.

    `pending` (due at `next_attempt_at`) -> `sending` (a worker's claim, until `lease_until`)
    -> `sent` | back to `pending` with a backoff after a failure | `failed` after the last
    attempt. A `sending` row whose lease ran out belongs to a worker that died: it is due
    again. `message_id` is fixed when the row is made, so every attempt carries the same
    Message-ID header."""

    event = models.ForeignKey(
        Event,
        on_delete=models.CASCADE,
        related_name="customer_messages",
        verbose_name=_("event"),
    )
    customer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="messages_received",
        verbose_name=_("customer"),
    )
    channel = models.CharField(
        _("channel"), max_length=10, choices=MessageChannel, default=MessageChannel.EMAIL
    )
    kind = models.CharField(_("kind"), max_length=30, choices=MessageKind)
    to = models.CharField(_("recipient"), max_length=254)
    subject = models.CharField(_("subject"), max_length=200, blank=True)
    status = models.CharField(
        _("status"), max_length=10, choices=MessageStatus, default=MessageStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt at"))
    lease_until = models.DateTimeField(_("lease until"), null=True, blank=True)
    message_id = models.CharField(_("Message-ID"), max_length=200)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("customer message")
        verbose_name_plural = _("customer messages")
        ordering = ["-id"]
        permissions = [("resend_customermessage", _("Can send a customer message again"))]
        indexes = [
            # The sender's claim: due pending rows, and sending rows whose lease ran out.
            models.Index(fields=["status", "next_attempt_at"], name="message_due"),
            models.Index(fields=["status", "lease_until"], name="message_lease"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["event", "customer", "channel"],
                name="message_once_per_event_customer_channel",
                violation_error_message=_(
                    "This customer already has a message about this event on this channel."
                ),
                violation_error_code="message_once",
            ),
            models.CheckConstraint(
                condition=Q(status__in=MessageStatus.values),
                name="message_status_valid",
                violation_error_message=_("A message is pending, sending, sent or failed."),
                violation_error_code="message_status",
            ),
            models.CheckConstraint(
                condition=~Q(status=MessageStatus.SENDING) | Q(lease_until__isnull=False),
                name="message_sending_has_lease",
                violation_error_message=_("A message being sent has a lease."),
                violation_error_code="message_lease",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} → {self.to} ({self.get_status_display()})"
