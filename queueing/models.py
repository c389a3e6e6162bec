from concerts.models import Concert


class ConcertQueue(Concert):
    """The waiting room of a concert, as operators see it in admin.

    A proxy: the settings are the concert's own fields, the live state is in Redis.
    """

    class Meta:
        proxy = True
        verbose_name = "concert queue"
        verbose_name_plural = "concert queues"
