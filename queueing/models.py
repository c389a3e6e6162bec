from django.db import models

from concerts.models import Concert


class QueueState(models.TextChoices):
    """A queue entry as the customer sees it: waiting -> admitted -> done | expired."""

    WAITING = "waiting", "Waiting"
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
