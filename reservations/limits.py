"""The per-customer ticket limit of a performance: seats held and bought, and seats waited
for on the waitlist, never more than the concert's ticket_limit.

Every path that adds to the count (a hold, joining the waitlist) first locks the customer's
own row (`customer_lock_and_count`), so two parallel requests of one customer take turns and cannot
both pass the check. A payment takes the same row: it turns held seats into bought ones,
which the limit counts alike; a waitlist offer turns waited-for seats into held ones.
"""

from datetime import datetime
from typing import NamedTuple

from django.db.models import Count, OuterRef, Q, Subquery

from accounts.models import User
from concerts.models import Schedule, Seat, SeatStatus

from .errors import TicketLimitReached
from .models import WaitlistEntry, WaitlistStatus


class TicketCount(NamedTuple):
    held: int
    bought: int
    waiting: int
    limit: int

    def check(self, *, wanted: int) -> None:
        """Refuse unless `wanted` more seats stay within the limit."""
        if self.held + self.bought + self.waiting + wanted > self.limit:
            raise TicketLimitReached.of(**self._asdict())


def customer_lock_and_count(user: User, schedule: Schedule, *, now: datetime) -> TicketCount:
    """Lock the customer's row (serialising their own holds and waitlist joins, only
    theirs) and count what the ticket limit counts: the seats they hold (unexpired) or
    bought for the performance, and the seats their waiting waitlist entry asks for. Seats
    cancelled, refunded or let go are back on sale, no longer theirs, and not counted. Two
    queries; call in the transaction that then adds seats."""
    # The waiting entry is read in the locking statement (its rows are not locked: InnoDB
    # locks a subquery's rows only when it says FOR UPDATE itself). One live entry at most.
    waiting_entry = WaitlistEntry.objects.filter(
        user=OuterRef("id"), schedule_id=schedule.id, status=WaitlistStatus.WAITING
    ).values("quantity")[:1]
    [waiting] = (
        User.objects.select_for_update()
        .filter(id=user.id)
        .annotate(waiting=Subquery(waiting_entry))
        .values_list("waiting", flat=True)
    )
    mine = Seat.objects.filter(reservation__user=user, reservation__schedule_id=schedule.id)
    counts = mine.aggregate(
        held=Count("id", filter=Q(status=SeatStatus.HELD, hold_expires_at__gt=now)),
        bought=Count("id", filter=Q(status=SeatStatus.SOLD)),
    )
    return TicketCount(
        held=counts["held"],
        bought=counts["bought"],
        waiting=waiting or 0,
        limit=schedule.concert.ticket_limit,
    )
