"""The cancellation fee schedule (payments/fees.py) against the standard Korean policy, at
every boundary, in won exactly. Days are Asia/Seoul calendar days: D-1 is the day before
the show, the day of payment is day 0 after it."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from concerts.models import CancellationPolicy, CancellationTier, standard_cancellation_policy_id
from payments.fees import SeatToCancel, quote_by_policy, quote_in_full

pytestmark = pytest.mark.django_db

SEOUL = ZoneInfo("Asia/Seoul")
SHOW = datetime(2026, 12, 20, 19, 0, tzinfo=SEOUL)  # D-0 is 2026-12-20
PRICE, BOOKING_FEE = 110_000, 2_000


def at(days_before: int, hour: int = 12, minute: int = 0) -> datetime:
    """Seoul wall-clock time on the day D-`days_before`."""
    day = SHOW.date() - timedelta(days=days_before)
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=SEOUL)


@pytest.fixture
def policy():
    return CancellationPolicy.objects.get(id=standard_cancellation_policy_id())


def quote(policy, *, now, paid_at, price=PRICE, booking_fee=BOOKING_FEE, seats=1):
    return quote_by_policy(
        policy=policy,
        tiers=list(policy.tiers.all()),
        seats=[
            SeatToCancel(item_id=n, seat_id=100 + n, price=price, booking_fee=booking_fee)
            for n in range(seats)
        ],
        paid_at=paid_at,
        show_starts_at=SHOW,
        now=now,
    )


# (cancelled on D-, at, paid on D-, fee per ticket, booking fee refunded)
SCHEDULE = [
    # Free within 7 days of payment while the show is 10 or more days away.
    (20, (12, 0), 20, 0, BOOKING_FEE),  # the day of payment: everything back
    (13, (12, 0), 20, 0, 0),  # day 7 after payment, D-13: free, booking fee kept
    (12, (12, 0), 20, 4_000, 0),  # day 8 after payment: the D-10+ tier
    (11, (12, 0), 15, 0, 0),  # paid 4 days ago, D-11: free
    (10, (12, 0), 15, 0, 0),  # D-10 still counts for the free window
    (9, (12, 0), 15, 11_000, 0),  # D-9: the free window no longer applies; 10 %
    # The tiers by days before the show (paid long ago).
    (11, (12, 0), 40, 4_000, 0),  # ₩4,000, at most 10 % of 110,000 = 11,000
    (10, (12, 0), 40, 4_000, 0),
    (9, (12, 0), 40, 11_000, 0),  # 10 %
    (7, (12, 0), 40, 11_000, 0),
    (6, (12, 0), 40, 22_000, 0),  # 20 %
    (3, (12, 0), 40, 22_000, 0),
    (2, (12, 0), 40, 33_000, 0),  # 30 %
    (1, (16, 59), 40, 33_000, 0),  # the last minute before the cut-off
    # The worked example: paid 8 days before a show now 5 days away.
    (5, (12, 0), 13, 22_000, 0),
]


@pytest.mark.parametrize("days_before, clock, paid_days_before, fee, booking_back", SCHEDULE)
def test_the_standard_schedule(policy, days_before, clock, paid_days_before, fee, booking_back):
    result = quote(policy, now=at(days_before, *clock), paid_at=at(paid_days_before, 10))

    [seat] = result.seats
    assert not result.closed
    assert (seat.fee, seat.booking_fee_refunded) == (fee, booking_back)
    assert seat.refund == PRICE - fee + booking_back
    assert seat.refund + seat.fee + (seat.booking_fee - seat.booking_fee_refunded) == (
        PRICE + BOOKING_FEE
    )


def test_the_worked_example_of_the_docs(policy):
    result = quote(policy, now=at(5), paid_at=at(13))

    assert (result.fee, result.booking_fee_kept, result.amount) == (22_000, 2_000, 88_000)
    assert result.rule.startswith("D-5: 20 %")


@pytest.mark.parametrize("now", [at(1, 17, 0), at(1, 23, 59), at(0, 9, 0), SHOW])
def test_nothing_can_be_cancelled_from_17_00_the_day_before(policy, now):
    assert quote(policy, now=now, paid_at=at(30)).closed


def test_the_booking_fee_comes_back_the_day_of_payment_whatever_the_tier(policy):
    result = quote(policy, now=at(2, 23, 0), paid_at=at(2, 0, 30))  # D-2: 30 %

    [seat] = result.seats
    assert (seat.fee, seat.booking_fee_refunded, seat.refund) == (33_000, 2_000, 79_000)


def test_a_cheap_ticket_pays_at_most_ten_percent_in_the_flat_tier(policy):
    [seat] = quote(policy, now=at(15), paid_at=at(30), price=30_000).seats

    assert seat.fee == 3_000  # ₩4,000 capped at 10 % of 30,000


def test_percentages_round_down_to_the_won(policy):
    [seat] = quote(policy, now=at(6), paid_at=at(30), price=99_999).seats

    assert seat.fee == 19_999  # 20 % of 99,999 is 19,999.8


def test_the_quote_holds_until_midnight_or_the_cut_off(policy):
    assert quote(policy, now=at(5, 12), paid_at=at(30)).valid_until == at(4, 0, 0)
    assert quote(policy, now=at(1, 9), paid_at=at(30)).valid_until == at(1, 17, 0)


def test_the_days_are_seoul_days_whatever_the_clock_zone(policy):
    # 2026-12-14 23:30 in Seoul is still 14:30 UTC on the 14th: D-6 either way, but at
    # 00:30 Seoul on the 15th (15:30 UTC on the 14th) it is D-5 in Seoul.
    utc = ZoneInfo("UTC")
    late = quote(policy, now=datetime(2026, 12, 14, 15, 30, tzinfo=utc), paid_at=at(30))

    assert late.rule.startswith("D-5")


def test_refund_plus_fees_kept_is_always_what_was_paid(policy):
    for price in (1_000, 9_999, 30_000, 110_000, 165_000, 1_000_000):
        for days_before in range(0, 30):
            for paid_days_before in (days_before, days_before + 3, days_before + 8, 60):
                result = quote(
                    policy,
                    now=at(days_before, 18),
                    paid_at=at(paid_days_before, 9),
                    price=price,
                    seats=2,
                )
                for seat in result.seats:
                    kept = seat.fee + seat.booking_fee - seat.booking_fee_refunded
                    assert seat.refund + kept == price + BOOKING_FEE
                    assert 0 <= seat.fee <= price and seat.refund >= 0


def test_an_operator_refund_in_full_keeps_nothing():
    result = quote_in_full(
        seats=[SeatToCancel(item_id=1, seat_id=101, price=PRICE, booking_fee=BOOKING_FEE)],
        now=at(0, 18),
    )

    assert (result.fee, result.booking_fee_kept, result.amount) == (0, 0, PRICE + BOOKING_FEE)


def test_a_policy_is_data_an_operator_can_change(policy):
    CancellationTier.objects.filter(policy=policy, min_days_before=3).update(percent=25)

    [seat] = quote(policy, now=at(4), paid_at=at(30)).seats

    assert seat.fee == 27_500
