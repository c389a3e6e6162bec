"""What cancelling seats of a paid reservation costs: a quote, from the concert's policy
(concerts.CancellationPolicy, data) and the calendar. Pure arithmetic: no database, no clock
of its own, so every rule is a plain test (tests/payments/test_cancellation_fees.py).

Days are calendar days in TIME_ZONE (Asia/Seoul), whatever the server's clock zone:
- D, days before the show: from the day of the cancellation to the day of the show (the
  day before the show is D-1);
- days after payment: from the day of the payment to the day of the cancellation (the day of
  payment is day 0).
Per seat: refund + cancellation fee + booking fee kept = price + booking fee paid. The
booking fee comes back only when the booking is cancelled on the day it was paid.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.utils import timezone

from concerts.models import CancellationPolicy, CancellationTier


@dataclass(frozen=True)
class SeatToCancel:
    item_id: int
    seat_id: int
    price: int
    booking_fee: int


@dataclass(frozen=True)
class SeatQuote:
    item_id: int
    seat_id: int
    price: int
    booking_fee: int
    fee: int
    booking_fee_refunded: int
    refund: int  # back to the wallet for this seat: price - fee + booking fee refunded


@dataclass(frozen=True)
class Quote:
    seats: list[SeatQuote]
    closed: bool  # past the cut-off: nothing can be cancelled
    rule: str  # the rule applied, for people
    valid_until: datetime  # when the quote may change (a new day, the cut-off)

    @property
    def refund(self) -> int:
        return sum(seat.price for seat in self.seats)

    @property
    def fee(self) -> int:
        return sum(seat.fee for seat in self.seats)

    @property
    def booking_fee_refunded(self) -> int:
        return sum(seat.booking_fee_refunded for seat in self.seats)

    @property
    def booking_fee_kept(self) -> int:
        return sum(seat.booking_fee - seat.booking_fee_refunded for seat in self.seats)

    @property
    def amount(self) -> int:
        """What goes back to the wallet."""
        return sum(seat.refund for seat in self.seats)


def _local_date(moment: datetime) -> date:
    return timezone.localtime(moment).date()


def _next_midnight(moment: datetime) -> datetime:
    """The start of the next local day: when the day counts change."""
    tomorrow = _local_date(moment) + timedelta(days=1)
    return timezone.make_aware(datetime.combine(tomorrow, time(0)))


def cutoff_instant(policy: CancellationPolicy, show_starts_at: datetime) -> datetime:
    """The moment after which nothing can be cancelled: the cut-off time, cutoff_days_before
    days before the day of the show (and never later than the show's start)."""
    day = _local_date(show_starts_at) - timedelta(days=policy.cutoff_days_before)
    cutoff = timezone.make_aware(datetime.combine(day, policy.cutoff_time))
    return min(cutoff, show_starts_at)


def quote_by_policy(
    *,
    policy: CancellationPolicy,
    tiers: Sequence[CancellationTier],
    seats: Sequence[SeatToCancel],
    paid_at: datetime,
    show_starts_at: datetime,
    now: datetime,
    past_cutoff_allowed: bool = False,
) -> Quote:
    """The customer's quote, and an operator's refund 'by the policy'. An operator may refund
    after the cut-off (`past_cutoff_allowed`): the fee is then the last tier's."""
    cutoff = cutoff_instant(policy, show_starts_at)
    valid_until = min(_next_midnight(now), cutoff) if now < cutoff else _next_midnight(now)
    days_before = (_local_date(show_starts_at) - _local_date(now)).days
    if past_cutoff_allowed and tiers:
        days_before = max(days_before, min(tier.min_days_before for tier in tiers))
    days_after_payment = (_local_date(now) - _local_date(paid_at)).days
    same_day = days_after_payment == 0
    if now >= cutoff and not past_cutoff_allowed:
        return Quote(
            seats=[_seat_quote(seat, fee=0, same_day=same_day) for seat in seats],
            closed=True,
            rule=f"Closed: no cancellation after {timezone.localtime(cutoff):%Y-%m-%d %H:%M}.",
            valid_until=valid_until,
        )
    if (
        days_after_payment <= policy.free_window_days
        and days_before >= policy.free_window_min_days_before
    ):
        rule = (
            f"No fee: within {policy.free_window_days} days of payment and "
            f"D-{policy.free_window_min_days_before} or earlier."
        )
        fees = [0 for _ in seats]
    else:
        tier = next(
            (
                tier
                for tier in tiers
                if tier.min_days_before <= days_before
                and (tier.max_days_before is None or days_before <= tier.max_days_before)
            ),
            None,
        )
        rule = f"D-{days_before}: " + (_describe(tier) if tier else "no fee in this policy")
        fees = [tier.fee(seat.price) if tier else 0 for seat in seats]
    if same_day:
        rule += " Booking fee refunded: cancelled on the day of payment."
    return Quote(
        seats=[
            _seat_quote(seat, fee=fee, same_day=same_day)
            for seat, fee in zip(seats, fees, strict=True)
        ],
        closed=False,
        rule=rule,
        valid_until=valid_until,
    )


def quote_in_full(*, seats: Sequence[SeatToCancel], now: datetime) -> Quote:
    """An operator's refund in full (the promoter cancels the show): no fee, booking fee back."""
    return Quote(
        seats=[_seat_quote(seat, fee=0, same_day=True) for seat in seats],
        closed=False,
        rule="Refunded in full by the operator.",
        valid_until=_next_midnight(now),
    )


def _seat_quote(seat: SeatToCancel, *, fee: int, same_day: bool) -> SeatQuote:
    booking_fee_refunded = seat.booking_fee if same_day else 0
    return SeatQuote(
        item_id=seat.item_id,
        seat_id=seat.seat_id,
        price=seat.price,
        booking_fee=seat.booking_fee,
        fee=fee,
        booking_fee_refunded=booking_fee_refunded,
        refund=seat.price - fee + booking_fee_refunded,
    )


def _describe(tier: CancellationTier) -> str:
    parts = []
    if tier.percent:
        parts.append(f"{tier.percent} % of the price")
    if tier.flat_won:
        cap = f" (at most {tier.cap_percent} % of the price)" if tier.cap_percent else ""
        parts.append(f"₩{tier.flat_won:,} a ticket{cap}")
    return " + ".join(parts) + "." if parts else "no fee."
