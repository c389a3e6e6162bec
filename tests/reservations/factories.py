from datetime import timedelta

import factory
from django.utils import timezone

from reservations.models import Reservation, ReservationSeat
from tests.accounts.factories import UserFactory
from tests.concerts.factories import ScheduleFactory


class ReservationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Reservation

    user = factory.SubFactory(UserFactory)
    schedule = factory.SubFactory(ScheduleFactory)
    total_price = 110_000
    expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(minutes=5))


class ReservationSeatFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ReservationSeat

    reservation = factory.SubFactory(ReservationFactory)
    price = 110_000


def held_reservation(*, user, seat_prices=(110_000,), schedule=None) -> Reservation:
    """A live hold of `user` on fresh seats at these prices, as reservation_hold leaves it;
    on `schedule`, or a new one."""
    from concerts.models import SeatStatus
    from tests.concerts.factories import SeatFactory

    schedule = schedule or ScheduleFactory()
    reservation = ReservationFactory(user=user, schedule=schedule, total_price=sum(seat_prices))
    for price in seat_prices:
        seat = SeatFactory(
            schedule=reservation.schedule,
            status=SeatStatus.HELD,
            hold_expires_at=reservation.expires_at,
            reservation=reservation,
            price=price,
        )
        ReservationSeatFactory(reservation=reservation, seat=seat, price=price)
    return reservation


def hold_seats(customer, schedule, *seats, now=None) -> Reservation:
    """`customer` holds these seats through the real service, admitted from the queue."""
    from reservations.services import reservation_hold
    from tests.conftest import admitted_queue_token

    return reservation_hold(
        user=customer,
        schedule_id=schedule.id,
        seat_ids=[seat.id for seat in seats],
        queue_token=admitted_queue_token(user=customer, concert=schedule.concert),
        now=now,
    )
