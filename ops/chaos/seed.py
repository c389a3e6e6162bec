"""The data of the fault suite: two concerts on sale now and their customers.

- The sale: several performances of 400 seats, and a queue that lets few shop at once, so
  a line forms and admission is bound by capacity (the capacity check means something).
  Holds last 1 minute, the least a concert allows: holds of customers who walk away run out
  within a phase and the Celery sweep has work.
- The line: a concert whose queue admits a few customers a minute. Its customers (the line
  keepers) only wait, so most of them are still waiting after each fault: their relative
  order before and after is what "every queued customer's place kept" is checked on.

Customers are made in bulk with API tokens (bench/harness/data.py) and their wallets funded
through the wallet service, so the ledger is as the API would have written it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from bench.harness.data import create_concert, create_customers, seat_blocks

SALE_QUEUE = {
    "queue_max_active": 10,
    "queue_admit_per_minute": 240,
    "queue_admitted_minutes": 2,
    # Short, so that an outage that were counted as not polling would show: 20 s of a stopped
    # database plus its restart come close to it.
    "queue_abandon_after_seconds": 30,
    "hold_minutes": 1,
}
LINE_QUEUE = {
    "queue_max_active": 3,
    "queue_admit_per_minute": 12,
    "queue_admitted_minutes": 1,
    "queue_abandon_after_seconds": 30,
    "hold_minutes": 1,
}
SEATS_PER_SCHEDULE = 400
SCHEDULES = 4
PRICE, VIP_PRICE = 110_000, 150_000  # won
OPENING_BALANCE = 2_000_000  # won per customer: a dozen purchases before a top-up is needed
LOW_ON_SEATS = 300  # free seats left across the sale's performances: add one more


@dataclass(frozen=True)
class Customer:
    user_id: int
    bearer: str


@dataclass
class Sale:
    concert_id: int
    line_concert_id: int
    capacity: dict[int, int]  # concert id -> queue_max_active
    shoppers: list[Customer]
    keepers: list[Customer]


def _no_ticket_limit() -> dict:
    """The crowd's customers buy round after round: the per-customer ticket limit (where the
    code has one) would soon refuse them, and the load would thin out."""
    from concerts.models import Concert

    fields = {field.name for field in Concert._meta.get_fields()}
    return {"ticket_limit": 10_000} if "ticket_limit" in fields else {}


def seed(*, shoppers: int, keepers: int) -> Sale:
    from django.contrib.auth import get_user_model

    from payments.services import wallet_charge

    sale = create_concert("Chaos: the on-sale", **SALE_QUEUE, **_no_ticket_limit())
    for _ in range(SCHEDULES - 1):
        schedule_add(sale.id)
    _seat_maps(list(sale.schedules.values_list("id", flat=True)))
    line = create_concert("Chaos: the line", **LINE_QUEUE)

    customers = [Customer(uid, token) for uid, token in create_customers(shoppers + keepers)]
    User = get_user_model()
    for user in User.objects.filter(id__in=[c.user_id for c in customers[:shoppers]]):
        wallet_charge(user=user, amount=OPENING_BALANCE)
    return Sale(
        concert_id=sale.id,
        line_concert_id=line.id,
        capacity={sale.id: sale.queue_max_active, line.id: line.queue_max_active},
        shoppers=customers[:shoppers],
        keepers=customers[shoppers:],
    )


def schedule_add(concert_id: int) -> int:
    """One more performance of the concert, a day after its last one (without seats)."""
    from concerts.models import Schedule

    last = Schedule.objects.filter(concert_id=concert_id).order_by("-starts_at").first()
    starts_at = last.starts_at + timedelta(days=1)
    schedule = Schedule.objects.create(
        concert_id=concert_id, starts_at=starts_at, ends_at=starts_at + timedelta(hours=2)
    )
    return schedule.id


def _seat_maps(schedule_ids: list[int]) -> None:
    from concerts.services import seat_map_generate

    blocks = seat_blocks(SEATS_PER_SCHEDULE, price=PRICE, row_width=20, vip_price=VIP_PRICE)
    seat_map_generate(schedule_ids=schedule_ids, blocks=blocks)


def free_seats(concert_id: int) -> int:
    """Seats of the concert that anyone could hold now (an expired hold counts as free)."""
    from django.utils import timezone

    from concerts.models import Seat
    from concerts.selectors import seat_free_q

    return (
        Seat.objects.filter(schedule__concert_id=concert_id)
        .filter(seat_free_q(timezone.now()))
        .count()
    )


def keep_seats_on_sale(concert_id: int) -> int | None:
    """A new performance when the sale runs low, so that the load never meets a sold-out
    house (a different load). Returns its id, if one was added."""
    if free_seats(concert_id) >= LOW_ON_SEATS:
        return None
    schedule_id = schedule_add(concert_id)
    _seat_maps([schedule_id])
    return schedule_id
