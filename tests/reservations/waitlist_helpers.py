"""Building sold-out performances for the waitlist tests, through the real services."""

from concerts.models import Seat
from payments.services import payment_create, wallet_charge
from reservations.models import Reservation, WaitlistEntry
from reservations.waitlist import waitlist_join
from tests.accounts.factories import UserFactory
from tests.concerts.factories import SeatFactory
from tests.reservations.factories import hold_seats


def seats_of(schedule, grade: str, section: str, rows: int, per_row: int, price: int) -> list[Seat]:
    return [
        SeatFactory(
            schedule=schedule, section=section, row=row, number=number, grade=grade, price=price
        )
        for row in range(1, rows + 1)
        for number in range(1, per_row + 1)
    ]


def buy(schedule, *seats, buyer=None) -> Reservation:
    """A customer holds and pays these seats (the customer is new unless given)."""
    buyer = buyer or UserFactory()
    wallet_charge(user=buyer, amount=2_000_000)
    reservation = hold_seats(buyer, schedule, *seats)
    payment_create(user=buyer, reservation_id=reservation.id)
    return reservation


def hold(schedule, *seats, now=None) -> Reservation:
    return hold_seats(UserFactory(), schedule, *seats, now=now)


def join(schedule, *, quantity=1, grades=None, user=None, **options) -> WaitlistEntry:
    entry, created = waitlist_join(
        user=user or UserFactory(),
        schedule_id=schedule.id,
        quantity=quantity,
        grades=grades,
        **options,
    )
    assert created
    return entry
