from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from concerts.models import Concert


class QueueState(models.TextChoices):
    """A queue entry as the customer sees it: waiting (paused while the operator holds
    admission) -> admitted -> done | expired."""

    WAITING = "waiting", "Waiting"
    PAUSED = "paused", "Waiting; admission paused"
    ADMITTED = "admitted", "Admitted"
    DONE = "done", "Done (paid or left)"
    EXPIRED = "expired", "Expired"


class EndReason(models.TextChoices):
    """Why an entry ended, as the queue scripts record it (scripts.py, the `ended` hash)."""

    LEFT = "left", "Left"
    DONE = "done", "Paid"
    ABANDONED = "abandoned", "Stopped polling"

    @property
    def public_state(self) -> QueueState:
        return QueueState.EXPIRED if self == EndReason.ABANDONED else QueueState.DONE


class ConcertQueue(Concert):
    """The waiting room of a concert, as operators see it in admin.

    A proxy: the settings are the concert's own fields, the live state is in Redis.
    """

    class Meta:
        proxy = True
        verbose_name = "concert queue"
        verbose_name_plural = "concert queues"


class QueueAdmission(models.Model):
    """A customer let in from a concert's queue, as the admission tick recorded it: what
    survives Redis losing the line. After such a loss the admitted sessions still running
    are put back before anyone new is let in, so max_active holds (docs/queue.md).

    `ended_at` is set when the customer left, or when the slot of a customer who paid could
    not be freed in Redis at once (`release_pending`: the tick frees it when Redis is back).
    """

    concert = models.ForeignKey(Concert, on_delete=models.CASCADE, related_name="+")
    # No database foreign key: the tick inserts admissions while the customer's own payment
    # may hold their user row, and must not wait for it.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.DO_NOTHING, related_name="+", db_constraint=False
    )
    nonce = models.CharField(max_length=16, help_text="The queue entry admitted.")
    order = models.BigIntegerField(help_text="The entry's order key in the line (its token's).")
    admitted_at = models.DateTimeField()
    admitted_until = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    release_pending = models.BooleanField(default=False)

    class Meta:
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
