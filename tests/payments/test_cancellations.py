"""Cancelling a paid booking, as a customer does it over the API and as an operator refunds,
against the real database: the quote, the money (ledger lines that sum to what moved), the
seats back on sale, the states, and money moving once however many requests race."""

import uuid
from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from concerts.models import Seat, SeatStatus
from payments.cancellations import payment_refund, refund_job_create, refund_job_run
from payments.models import Cancellation, LedgerEntry, Payment, RefundJob, Wallet
from payments.services import payment_create, wallet_charge
from reservations.models import ReservationSeat, ReservationStatus
from tests.concerts.factories import ConcertFactory, ScheduleFactory, SeatFactory
from tests.concurrency import make_customers, run_concurrently
from tests.conftest import client_for
from tests.reservations.factories import hold_seats

PRICE = 110_000


def paid_booking(customer, *, seats=2, days_away=30, booking_fee=2_000, paid_days_ago=0):
    """A booking of `seats` seats at ₩110,000 (+ booking fee each), paid `paid_days_ago`
    days ago, for a show `days_away` days from now."""
    now = timezone.now()
    concert = ConcertFactory(booking_fee=booking_fee)
    schedule = ScheduleFactory(
        concert=concert,
        starts_at=now + timedelta(days=days_away),
        ends_at=now + timedelta(days=days_away, hours=2),
    )
    wanted = [SeatFactory(schedule=schedule, price=PRICE) for _ in range(seats)]
    wallet_charge(user=customer, amount=1_000_000)
    reservation = hold_seats(customer, schedule, *wanted)
    payment = payment_create(user=customer, reservation_id=reservation.id)
    if paid_days_ago:
        Payment.objects.filter(id=payment.id).update(created_at=now - timedelta(days=paid_days_ago))
    return reservation, wanted


def ledger_of(customer) -> list[tuple[str, int]]:
    return list(
        LedgerEntry.objects.filter(wallet__user=customer)
        .order_by("id")
        .values_list("kind", "amount")
    )


@pytest.mark.django_db
def test_a_customer_sees_the_quote_and_cancels_one_of_two_tickets(customer, customer_client):
    reservation, seats = paid_booking(customer, days_away=5, paid_days_ago=8)
    balance = Wallet.objects.get(user=customer).balance
    url = f"/api/v1/reservations/{reservation.id}/cancellation"

    quote = customer_client.get(url, {"seat_ids": str(seats[0].id)}).json()
    cancelled = customer_client.post(
        url, {"seat_ids": [seats[0].id]}, format="json", HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4())
    )

    # The worked example: D-5 is 20 %, the booking fee is kept.
    assert (quote["fee"], quote["booking_fee_kept"], quote["amount"]) == (22_000, 2_000, 88_000)
    assert quote["cancellable"] and quote["rule"].startswith("D-5: 20 %")
    assert cancelled.status_code == 201, cancelled.content
    body = cancelled.json()
    assert (body["amount"], body["reservation_status"]) == (88_000, "confirmed")
    assert Wallet.objects.get(user=customer).balance == balance + 88_000
    assert ledger_of(customer)[-2:] == [("refund", 110_000), ("cancellation_fee", -22_000)]
    seats[0].refresh_from_db()
    seats[1].refresh_from_db()
    assert (seats[0].status, seats[0].reservation_id) == (SeatStatus.AVAILABLE, None)
    assert seats[1].status == SeatStatus.SOLD
    shown = customer_client.get(f"/api/v1/reservations/{reservation.id}").json()
    assert shown["status"] == "confirmed"
    assert [s["cancelled_at"] is not None for s in shown["seats"]] == [True, False]


@pytest.mark.django_db
def test_cancelling_every_seat_the_day_of_payment_gives_everything_back(customer, customer_client):
    reservation, _ = paid_booking(customer, days_away=30)
    before = Wallet.objects.get(user=customer).balance

    response = customer_client.post(f"/api/v1/reservations/{reservation.id}/cancellation")

    assert response.status_code == 201
    assert response.json()["amount"] == 2 * (PRICE + 2_000)
    assert Wallet.objects.get(user=customer).balance == before + 2 * (PRICE + 2_000)
    assert ledger_of(customer)[-2:] == [("refund", 2 * PRICE), ("booking_fee_refund", 4_000)]
    reservation.refresh_from_db()
    assert reservation.status == ReservationStatus.CANCELLED
    payment = Payment.objects.get(reservation=reservation)
    assert (payment.status, payment.refunded_amount) == ("refunded", payment.amount)
    assert customer_client.get(f"/api/v1/reservations/{reservation.id}").json()["status"] == (
        "cancelled"
    )


@pytest.mark.django_db
def test_after_the_cut_off_nothing_is_cancelled(customer, customer_client):
    from config.localcache import LocalCache

    reservation, seats = paid_booking(customer, days_away=30)
    schedule = reservation.schedule
    schedule.starts_at = timezone.now() + timedelta(hours=2)  # the show moved to tonight
    schedule.save()
    LocalCache.clear_all()  # (web processes see it within LOCAL_CACHE_SECONDS)

    response = customer_client.post(f"/api/v1/reservations/{reservation.id}/cancellation")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "cancellation_closed"
    assert not Cancellation.objects.exists()
    assert Seat.objects.filter(id__in=[s.id for s in seats], status=SeatStatus.SOLD).count() == 2


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body, field",
    [
        ({"seat_id": [1]}, "seat_id"),
        ({"seat_ids": [999_999]}, "seat_ids"),
        ({"seat_ids": []}, "seat_ids"),
    ],
)
def test_a_request_that_names_no_seat_of_the_booking_cancels_nothing(
    customer, customer_client, body, field
):
    reservation, _ = paid_booking(customer)

    response = customer_client.post(
        f"/api/v1/reservations/{reservation.id}/cancellation", body, format="json"
    )

    assert response.status_code == 400
    assert field in response.json()["error"]["details"]
    assert not Cancellation.objects.exists()


@pytest.mark.django_db
def test_a_hold_or_another_customers_booking_cannot_be_cancelled_this_way(
    customer, customer_client
):
    schedule = ScheduleFactory()
    held = hold_seats(customer, schedule, SeatFactory(schedule=schedule))
    someone, _ = paid_booking(make_customers(1, prefix="other")[0])

    not_paid = customer_client.post(f"/api/v1/reservations/{held.id}/cancellation")
    not_mine = customer_client.get(f"/api/v1/reservations/{someone.id}/cancellation")

    assert (not_paid.status_code, not_paid.json()["error"]["code"]) == (
        409,
        "reservation_not_cancellable",
    )
    assert not_mine.status_code == 404


@pytest.mark.django_db
def test_cancelled_seats_free_the_ticket_limit_again(customer):
    reservation, seats = paid_booking(customer, seats=4)
    schedule = reservation.schedule
    more = [SeatFactory(schedule=schedule, price=PRICE) for _ in range(2)]
    from reservations.errors import TicketLimitReached

    with pytest.raises(TicketLimitReached) as refused:
        hold_seats(customer, schedule, more[0])
    client_for(customer).post(
        f"/api/v1/reservations/{reservation.id}/cancellation",
        {"seat_ids": [seats[0].id, seats[1].id]},
        format="json",
    )

    assert refused.value.details == {"held": 0, "bought": 4, "waiting": 0, "limit": 4}
    assert hold_seats(customer, schedule, *more).status == ReservationStatus.HELD


@pytest.mark.django_db
def test_an_operator_refund_by_the_policy_keeps_the_fee_and_records_why(customer, operator):
    reservation, _ = paid_booking(customer, days_away=5, paid_days_ago=8)

    cancellation = payment_refund(
        payment_id=reservation.payment.id,
        operator=operator,
        in_full=False,
        reason="The customer called.",
    )

    assert (cancellation.kind, cancellation.amount, cancellation.fee) == (
        "operator_policy",
        2 * 88_000,
        2 * 22_000,
    )
    reservation.refresh_from_db()
    assert reservation.status == ReservationStatus.REFUNDED


@pytest.mark.django_db(transaction=True)
def test_racing_cancellations_and_an_operator_refund_move_money_once():
    [customer, operator] = make_customers(2, prefix="race")
    reservation, seats = paid_booking(customer, seats=2, days_away=5, paid_days_ago=8)
    paid_balance = Wallet.objects.get(user=customer).balance
    shared_key = str(uuid.uuid4())
    keys = [shared_key] * 5 + [str(uuid.uuid4()) for _ in range(5)]

    def attempt(i):
        if i == 10:
            return payment_refund(
                payment_id=reservation.payment.id, operator=operator, in_full=True, reason="Moved."
            )
        return client_for(customer).post(
            f"/api/v1/reservations/{reservation.id}/cancellation",
            {"seat_ids": [seats[0].id]} if i % 2 else {},
            format="json",
            HTTP_IDEMPOTENCY_KEY=keys[i],
        )

    outcomes = run_concurrently(11, attempt, workers=11)

    moved = Wallet.objects.get(user=customer).balance - paid_balance
    cancellations = list(Cancellation.objects.filter(reservation=reservation))
    # Whoever came first, each seat's money moved once and the books agree.
    assert moved == sum(c.amount for c in cancellations)
    assert sorted(i.item_id for c in cancellations for i in c.items.all()) == sorted(
        ReservationSeat.objects.filter(reservation=reservation).values_list("id", flat=True)
    )
    assert moved <= 2 * (PRICE + 2_000)
    lines = LedgerEntry.objects.filter(cancellation__reservation=reservation)
    assert sum(line.amount for line in lines) == moved
    answers = Counter(
        getattr(o, "status_code", type(o).__name__)
        for o in outcomes
        if not isinstance(o, Cancellation)
    )
    assert set(answers) <= {201, 400, 409}, answers


@pytest.mark.django_db(transaction=True)
def test_a_performance_refund_job_killed_mid_way_refunds_each_booking_once():
    customers = make_customers(6, prefix="crowd")
    operator = customers.pop()
    now = timezone.now()
    concert = ConcertFactory()
    schedule = ScheduleFactory(concert=concert, starts_at=now + timedelta(days=20))
    bookings = []
    for customer in customers:
        seat = SeatFactory(schedule=schedule, price=PRICE)
        wallet_charge(user=customer, amount=500_000)
        reservation = hold_seats(customer, schedule, seat)
        payment_create(user=customer, reservation_id=reservation.id)
        bookings.append(reservation)
    job = refund_job_create(
        schedule_id=schedule.id, in_full=True, reason="The show is cancelled.", operator=operator
    )

    # The first run dies after two refunds (its worker killed): simulated by a refund that
    # raises on the third booking, with the lease left to run out.
    import payments.cancellations as cancellations

    real_refund, calls = cancellations.payment_refund, []

    def dying_refund(**kwargs):
        calls.append(kwargs["payment_id"])
        if len(calls) == 3:
            raise SystemExit("worker killed")
        return real_refund(**kwargs)

    cancellations.payment_refund = dying_refund
    try:
        with pytest.raises(SystemExit):
            refund_job_run(job_id=job.id)
    finally:
        cancellations.payment_refund = real_refund
    RefundJob.objects.filter(id=job.id).update(lease_until=timezone.now() - timedelta(seconds=1))
    done = refund_job_run(job_id=job.id)

    assert (done.state, done.refunded, done.total) == ("done", 5, 5)
    per_booking = Counter(
        Cancellation.objects.filter(job=job).values_list("reservation_id", flat=True)
    )
    assert per_booking == {reservation.id: 1 for reservation in bookings}
    for customer in customers:
        assert Wallet.objects.get(user=customer).balance == 500_000  # everything back
