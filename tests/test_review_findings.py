"""Regression tests for what the code review of the holds, payments and queue found."""

import uuid
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import IdempotencyRecord
from concerts.errors import SeatMapInvalid
from concerts.models import Seat, SeatStatus
from concerts.services import SeatBlock, seat_map_generate
from payments.models import LedgerEntry, Wallet
from payments.services import wallet_charge
from queueing.selectors import queue_status
from queueing.services import queue_admit_tick, queue_enter, queue_release
from queueing.tokens import token_read
from reservations.errors import HoldExpired, SalesClosed
from reservations.models import ReservationStatus
from reservations.services import reservation_cancel, reservation_expire_due, reservation_hold
from tests.accounts.factories import OperatorFactory
from tests.concerts.factories import ConcertFactory, ScheduleFactory, SeatFactory
from tests.conftest import admitted_queue_token

pytestmark = pytest.mark.django_db


def hold(customer, schedule, *seats, now=None):
    return reservation_hold(
        user=customer,
        schedule_id=schedule.id,
        seat_ids=[seat.id for seat in seats],
        queue_token=admitted_queue_token(user=customer, concert=schedule.concert),
        now=now,
    )


def test_a_token_with_non_ascii_digits_is_refused_not_a_crash(customer_client):
    response = customer_client.get(
        "/api/v1/queue", HTTP_X_QUEUE_TOKEN="\xb2.0123456789abcdef." + "0" * 32
    )

    assert (response.status_code, response.json()["error"]["code"]) == (401, "queue_token_invalid")


def test_cancelling_a_lapsed_hold_answers_the_same_before_and_after_the_sweep(customer):
    from reservations.errors import ReservationNotCancellable

    schedule = ScheduleFactory()
    seat = SeatFactory(schedule=schedule)
    reservation = hold(customer, schedule, seat, now=timezone.now() - timedelta(minutes=6))

    with pytest.raises(ReservationNotCancellable) as before:
        reservation_cancel(user=customer, reservation_id=reservation.id)
    reservation_expire_due()
    with pytest.raises(ReservationNotCancellable) as after:
        reservation_cancel(user=customer, reservation_id=reservation.id)

    assert before.value.details == after.value.details == {"status": "expired"}


def test_a_swept_reservation_cannot_be_paid(customer):
    from payments.services import payment_create

    schedule = ScheduleFactory()
    seat = SeatFactory(schedule=schedule)
    wallet_charge(user=customer, amount=500_000)
    reservation = hold(customer, schedule, seat, now=timezone.now() - timedelta(minutes=6))
    reservation_expire_due()

    with pytest.raises(HoldExpired):
        payment_create(user=customer, reservation_id=reservation.id)

    assert Wallet.objects.get(user=customer).balance == 500_000
    reservation.refresh_from_db()
    assert reservation.status == ReservationStatus.EXPIRED


def test_a_lapsed_hold_not_yet_swept_can_still_be_paid_while_its_seats_are_free(customer):
    from payments.services import payment_create

    schedule = ScheduleFactory()
    seat = SeatFactory(schedule=schedule)
    wallet_charge(user=customer, amount=500_000)
    reservation = hold(customer, schedule, seat, now=timezone.now() - timedelta(minutes=6))

    payment_create(user=customer, reservation_id=reservation.id)

    seat.refresh_from_db()
    assert (seat.status, seat.reservation_id) == (SeatStatus.SOLD, reservation.id)


def test_seats_of_a_performance_that_has_started_are_not_on_sale(customer):
    schedule = ScheduleFactory(starts_at=timezone.now() - timedelta(minutes=1))
    seat = SeatFactory(schedule=schedule)

    with pytest.raises(SalesClosed):
        hold(customer, schedule, seat)


def test_paying_frees_only_an_admitted_queue_slot_never_a_place_in_line():
    concert = ConcertFactory()
    entry = queue_enter(concert_id=concert.id, user_id=1)  # waiting, for another date, say

    queue_release(concert_id=concert.id, user_id=1)

    nonce = token_read(entry.token, user_id=1).nonce
    assert queue_status(concert=concert, user_id=1, nonce=nonce).state == "waiting"


def test_no_eta_while_the_line_has_not_moved_for_a_minute():
    concert = ConcertFactory(queue_max_active=1, queue_admit_per_minute=600)
    start = timezone.now()
    queue_enter(concert_id=concert.id, user_id=1, now=start)
    second = queue_enter(concert_id=concert.id, user_id=2, now=start)
    queue_admit_tick(concert=concert, now=start)  # the one slot is taken
    later = start + timedelta(seconds=90)
    queue_status(
        concert=concert,
        user_id=2,
        nonce=token_read(second.token, user_id=2).nonce,
        now=start + timedelta(seconds=60),
    )
    queue_admit_tick(concert=concert, now=later)  # nobody left: nothing admitted for a minute

    status = queue_status(
        concert=concert, user_id=2, nonce=token_read(second.token, user_id=2).nonce, now=later
    )

    assert (status.position, status.eta_seconds) == (1, None)


def test_replacing_a_seat_map_with_reservation_history_is_refused_not_a_crash(customer):
    schedule = ScheduleFactory()
    seat = SeatFactory(schedule=schedule)
    reservation = hold(customer, schedule, seat)
    reservation_cancel(user=customer, reservation_id=reservation.id)

    with pytest.raises(SeatMapInvalid, match="reserved before"):
        seat_map_generate(
            schedule_ids=[schedule.id],
            blocks=[SeatBlock(section="Z", grade="R", price=1000, rows=1, seats_per_row=2)],
            replace=True,
        )

    assert Seat.objects.filter(schedule=schedule).count() == 1


def test_a_stale_admin_form_cannot_undo_a_sale(customer):
    schedule = ScheduleFactory()
    seat = SeatFactory(schedule=schedule, price=100_000)
    operator = Client()
    operator.force_login(OperatorFactory())
    form_page = operator.get(f"/admin/concerts/seat/{seat.id}/change/")
    assert form_page.status_code == 200
    hold(customer, schedule, seat)  # a customer takes the seat while the form is open

    operator.post(f"/admin/concerts/seat/{seat.id}/change/", {"grade": "R", "price": "90000"})

    seat.refresh_from_db()
    assert (seat.status, seat.price) == (SeatStatus.HELD, 100_000)
    assert seat.reservation_id is not None


def test_an_available_seat_can_be_repriced(customer):
    seat = SeatFactory(price=100_000)
    operator = Client()
    operator.force_login(OperatorFactory())

    response = operator.post(
        f"/admin/concerts/seat/{seat.id}/change/", {"grade": "S", "price": "90000"}
    )

    assert response.status_code == 302
    seat.refresh_from_db()
    assert (seat.grade, seat.price, seat.status) == ("S", 90_000, SeatStatus.AVAILABLE)


def test_a_stuck_request_whose_claim_was_taken_over_does_no_work(customer, customer_client):
    import hashlib

    from rest_framework.response import Response

    from config.errors import IdempotencyInProgress
    from config.idempotency import _work_and_record

    key = str(uuid.uuid4())
    body = "POST /api/v1/wallet/charges\n" + '{"amount":1000}'
    # A first request claimed the key a minute ago and is stuck (a long lock wait, say).
    stuck = IdempotencyRecord.objects.create(
        user=customer,
        key=key,
        fingerprint=hashlib.sha256(body.encode()).hexdigest(),
        locked_at=timezone.now() - timedelta(minutes=1),
    )

    retry = customer_client.post(
        "/api/v1/wallet/charges", {"amount": 1_000}, format="json", HTTP_IDEMPOTENCY_KEY=key
    )
    with pytest.raises(IdempotencyInProgress):  # the stuck one wakes up: its claim is gone
        _work_and_record(stuck, lambda: Response(wallet_charge(user=customer, amount=1_000)))

    assert retry.status_code == 201
    assert LedgerEntry.objects.filter(wallet__user=customer).count() == 1
    assert Wallet.objects.get(user=customer).balance == 1_000
