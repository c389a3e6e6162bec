from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from concerts.models import Concert


class QueueState(models.TextChoices):
    """A queue entry as the customer sees it: waiting (paused while the operator holds
    admission) -> admitted -> done | expired."""

    WAITING = "waiting", _("Waiting")
    PAUSED = "paused", _("Waiting; admission paused")
    ADMITTED = "admitted", _("Admitted")
    DONE = "done", _("Done (paid or left)")
    EXPIRED = "expired", _("Expired")


class EndReason(models.TextChoices):
    """Why an entry ended, as the queue scripts record it (scripts.py, the `ended` hash)."""

    LEFT = "left", _("Left")
    DONE = "done", _("Paid")
    ABANDONED = "abandoned", _("Stopped polling")
    UNCLAIMED = "unclaimed", _("Admitted, but did not come within the claim window")

    @property
    def public_state(self) -> QueueState:
        if self in (EndReason.ABANDONED, EndReason.UNCLAIMED):
            return QueueState.EXPIRED
        return QueueState.DONE


class ConcertQueue(Concert):
    """The waiting room of a concert, as operators see it in admin.

    A proxy: the settings are the concert's own fields, the live state is in Redis.
    """

    class Meta:
        proxy = True
        verbose_name = _("concert queue")
        verbose_name_plural = _("concert queues")


class QueueAdmission(models.Model):
    """A customer let in from a concert's queue, as the admission tick recorded it: what
    survives Redis losing the line. After such a loss the admitted sessions still running
    are put back before anyone new is let in, so max_active holds (docs/queue.md).

    `ended_at` is set when the customer left, or when the slot of a customer who paid could
    not be freed in Redis at once (`release_pending`: the tick frees it when Redis is back).
    """

    concert = models.ForeignKey(
        Concert, verbose_name=_("concert"), on_delete=models.CASCADE, related_name="+"
    )
    # No database foreign key: the tick inserts admissions while the customer's own payment
    # may hold their user row, and must not wait for it.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.DO_NOTHING,
        related_name="+",
        db_constraint=False,
    )
    nonce = models.CharField(_("nonce"), max_length=16, help_text=_("The queue entry admitted."))
    order = models.BigIntegerField(
        _("order"), help_text=_("The entry's order key in the line (its token's).")
    )
    admitted_at = models.DateTimeField(_("admitted at"))
    admitted_until = models.DateTimeField(_("admitted until"))
    ended_at = models.DateTimeField(_("ended at"), null=True, blank=True)
    release_pending = models.BooleanField(_("release pending"), default=False)

    class Meta:
        verbose_name = _("queue admission")
        verbose_name_plural = _("queue admissions")
        constraints = [
            models.UniqueConstraint(
                fields=["concert", "user", "nonce"],
                name="queue_admission_once_per_entry",
                violation_error_code="admitted_twice",
                violation_error_message=_("A queue entry is admitted once."),
            ),
        ]
        indexes = [
            models.Index(fields=["concert", "admitted_until"], name="queue_admission_live_idx"),
            models.Index(fields=["release_pending"], name="queue_admission_release_idx"),
        ]

    def __str__(self) -> str:
        # The customer by id: the user has no database foreign key here (see above).
        return gettext("Customer %(user)s admitted to concert %(concert)s at %(at)s") % {
            "user": self.user_id,
            "concert": self.concert_id,
            "at": f"{timezone.localtime(self.admitted_at):%Y-%m-%d %H:%M:%S}"
            if self.admitted_at
            else "—",
        }
