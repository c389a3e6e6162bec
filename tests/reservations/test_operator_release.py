"""An operator releases a customer's hold: the service, and the admin action with its
confirmation page, reason and history."""

import re
from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.utils import timezone

from concerts.models import Seat, SeatStatus
from config.errors import ValidationFailed
from reservations.errors import ReservationNotCancellable
from reservations.models import (
    Reservation,
    ReservationStatus,
    WaitlistEventKind,
    WaitlistStatus,
)
from reservations.services import reservation_release_by_operator
from tests.concerts.factories import ScheduleFactory
from tests.reservations.waitlist_helpers import buy, hold, join, seats_of

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/reservations/reservation/"


@pytest.fixture
def schedule():
    return ScheduleFactory()


def seat_state(seat) -> tuple:
    seat = Seat.objects.get(id=seat.id)
    return seat.status, seat.reservation_id


def history_of(obj) -> list[str]:
    return list(
        LogEntry.objects.filter(object_id=str(obj.id), content_type__model=obj._meta.model_name)
        .order_by("id")
        .values_list("change_message", flat=True)
    )


# --- The service -----------------------------------------------------------------------------


def test_a_released_hold_frees_its_seats_and_records_who_and_why(schedule, operator):
    seats = seats_of(schedule, "R", "A", rows=1, per_row=2, price=99_000)
    reservation = hold(schedule, *seats)

    reservation_release_by_operator(
        reservation_id=reservation.id, operator=operator, reason="Stuck since the outage."
    )

    reservation.refresh_from_db()
    assert reservation.status == ReservationStatus.CANCELLED
    assert [seat_state(seat) for seat in seats] == [(SeatStatus.AVAILABLE, None)] * 2
    entry = LogEntry.objects.get(object_id=str(reservation.id))
    assert entry.user == operator
    assert "Stuck since the outage." in entry.change_message
    assert "A-1-1 (₩99,000), A-1-2 (₩99,000)" in entry.change_message


def test_released_seats_go_to_the_waitlist_first(schedule, operator):
    seats = seats_of(schedule, "R", "A", rows=1, per_row=2, price=99_000)
    buy(schedule, seats[0])
    reservation = hold(schedule, seats[1])
    waiting = join(schedule, quantity=1)

    reservation_release_by_operator(
        reservation_id=reservation.id, operator=operator, reason="Customer asked."
    )

    waiting.refresh_from_db()
    assert waiting.status == WaitlistStatus.OFFERED
    assert seat_state(seats[1]) == (SeatStatus.HELD, waiting.offer_id)


def test_releasing_a_waitlist_offer_declines_it(schedule, operator):
    seats = seats_of(schedule, "R", "A", rows=1, per_row=1, price=99_000)
    booking = buy(schedule, seats[0])
    first, second = join(schedule), join(schedule)
    from payments.cancellations import reservation_cancel_paid

    reservation_cancel_paid(user=booking.user, reservation_id=booking.id)
    first.refresh_from_db()
    assert first.status == WaitlistStatus.OFFERED

    reservation_release_by_operator(
        reservation_id=first.offer_id, operator=operator, reason="Wrong customer."
    )

    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == WaitlistStatus.LEFT
    assert list(first.events.values_list("kind", flat=True)) == [
        WaitlistEventKind.OFFERED,
        WaitlistEventKind.DECLINED,
    ]
    assert second.status == WaitlistStatus.OFFERED  # the seat went on down the line


@pytest.mark.parametrize("state", ["paid", "lapsed", "released"])
def test_only_a_live_hold_is_released(schedule, operator, state):
    seats = seats_of(schedule, "R", "A", rows=1, per_row=1, price=99_000)
    if state == "paid":
        reservation = buy(schedule, seats[0])
    elif state == "lapsed":
        reservation = hold(schedule, seats[0], now=timezone.now() - timedelta(hours=1))
    else:
        reservation = hold(schedule, seats[0])
        reservation_release_by_operator(
            reservation_id=reservation.id, operator=operator, reason="First time."
        )
    before = (Reservation.objects.get(id=reservation.id).status, seat_state(seats[0]))

    with pytest.raises(ReservationNotCancellable):
        reservation_release_by_operator(
            reservation_id=reservation.id, operator=operator, reason="Again."
        )

    assert (Reservation.objects.get(id=reservation.id).status, seat_state(seats[0])) == before


def test_a_release_needs_a_reason(schedule, operator):
    reservation = hold(schedule, *seats_of(schedule, "R", "A", rows=1, per_row=1, price=1_000))

    with pytest.raises(ValidationFailed):
        reservation_release_by_operator(
            reservation_id=reservation.id, operator=operator, reason=" "
        )

    assert Reservation.objects.get(id=reservation.id).status == ReservationStatus.HELD


def test_nothing_is_half_done_when_the_history_cannot_be_written(schedule, operator, monkeypatch):
    seats = seats_of(schedule, "R", "A", rows=1, per_row=1, price=1_000)
    reservation = hold(schedule, *seats)

    def broken(**kwargs):
        raise RuntimeError("the history table is gone")

    monkeypatch.setattr("reservations.services.operator_history_record", broken)
    with pytest.raises(RuntimeError):
        reservation_release_by_operator(
            reservation_id=reservation.id, operator=operator, reason="Stuck."
        )

    assert Reservation.objects.get(id=reservation.id).status == ReservationStatus.HELD
    assert seat_state(seats[0]) == (SeatStatus.HELD, reservation.id)


# --- The admin action ------------------------------------------------------------------------


def release(client, reservations, *, reason="Stuck since the outage.", confirmed=True):
    form = {"action": "release_holds", "_selected_action": [r.id for r in reservations]}
    if confirmed:
        form |= {"confirmed": "yes", "reason": reason}
    return client.post(CHANGELIST, form)


def test_the_release_page_shows_holds_seats_and_customers_and_moves_nothing(
    schedule, operator_client
):
    seats = seats_of(schedule, "R", "A", rows=1, per_row=3, price=99_000)
    held = hold(schedule, seats[0], seats[1])
    paid = buy(schedule, seats[2])

    page = release(operator_client, [held, paid], confirmed=False)

    text = page.content.decode().replace("<wbr>", "")
    assert page.status_code == 200
    assert "No seat moves until you confirm" in text
    assert held.user.email in text and "A-1-1 (₩99,000), A-1-2 (₩99,000)" in text
    assert paid.user.email not in text  # a paid booking is not a hold: it is left alone
    assert "1 customer" in text and "2 seats" in text
    assert seat_state(seats[0]) == (SeatStatus.HELD, held.id)


def test_an_operator_releases_a_hold_with_a_reason(schedule, operator, operator_client):
    seats = seats_of(schedule, "R", "A", rows=1, per_row=1, price=99_000)
    held = hold(schedule, *seats)

    assert release(operator_client, [held], reason="").status_code == 200  # asked again
    assert seat_state(seats[0]) == (SeatStatus.HELD, held.id)

    response = release(operator_client, [held])

    assert response.status_code == 302
    assert seat_state(seats[0]) == (SeatStatus.AVAILABLE, None)
    assert Reservation.objects.get(id=held.id).status == ReservationStatus.CANCELLED
    assert "Stuck since the outage." in history_of(held)[0]


def test_selecting_no_live_hold_releases_nothing(schedule, operator_client):
    seats = seats_of(schedule, "R", "A", rows=1, per_row=1, price=99_000)
    paid = buy(schedule, *seats)

    response = release(operator_client, [paid])

    assert response.status_code == 302
    assert seat_state(seats[0]) == (SeatStatus.SOLD, paid.id)
    assert Reservation.objects.get(id=paid.id).status == ReservationStatus.CONFIRMED


def test_only_holds_show_when_they_end(schedule, operator_client):
    seats = seats_of(schedule, "R", "A", rows=1, per_row=2, price=99_000)
    held, paid = hold(schedule, seats[0]), buy(schedule, seats[1])

    held_page = operator_client.get(f"{CHANGELIST}{held.id}/change/").content.decode()
    paid_page = operator_client.get(f"{CHANGELIST}{paid.id}/change/").content.decode()
    listing = operator_client.get(CHANGELIST).content.decode()

    assert "Hold ends" in held_page
    assert "Hold ends" not in paid_page and "Expires at" not in paid_page
    assert hold_ends_cell(listing, held) == f"{timezone.localtime(held.expires_at):%Y-%m-%d %H:%M}"
    assert hold_ends_cell(listing, paid) == "—"


def hold_ends_cell(listing: str, reservation) -> str:
    row = next(
        row
        for row in re.findall(r"<tr>.*?</tr>", listing, re.DOTALL)
        if f"/reservation/{reservation.id}/change/" in row
    )
    return re.search(r"field-hold_ends[^>]*>([^<]*)<", row).group(1)


def test_sales_staff_offer_seats_on_sale_to_the_waitlist(schedule, staff_client):
    from accounts.operator_groups import SALES_STAFF
    from tests.concerts.factories import SeatFactory

    client, user = staff_client(SALES_STAFF)
    buy(schedule, *seats_of(schedule, "R", "A", rows=1, per_row=1, price=99_000))
    waiting = join(schedule)
    added = SeatFactory(schedule=schedule, section="B", grade="R")  # on sale, unseen by the line

    response = client.post(
        "/admin/reservations/waitlistentry/",
        {"action": "hand_on_now", "_selected_action": [waiting.id]},
    )

    assert response.status_code == 302
    waiting.refresh_from_db()
    assert waiting.status == WaitlistStatus.OFFERED
    assert seat_state(added) == (SeatStatus.HELD, waiting.offer_id)
    assert LogEntry.objects.filter(user=user, object_id=str(schedule.id)).exists()
