"""Exact queries per request of the hold and cancel paths, so that an extra query (an N+1, a
read-back, a savepoint nobody needs) shows up as a failing test, not as a slower benchmark.

Tests run inside a transaction: each service's transaction.atomic() is a SAVEPOINT ... RELEASE
pair here, where in production it is BEGIN ... COMMIT (which the counts do not include).
Redis calls (the queue token check, the seat map version after commit) are not queries."""

import pytest

from concerts.models import Seat, SeatStatus
from tests.concerts.factories import ScheduleFactory, SeatFactory
from tests.reservations.factories import held_reservation

pytestmark = pytest.mark.django_db


@pytest.fixture
def schedule():
    schedule = ScheduleFactory()
    for number in range(1, 9):
        SeatFactory(schedule=schedule, number=number)
    return schedule


def seat_ids(schedule, *numbers) -> list[int]:
    return [Seat.objects.get(schedule=schedule, number=n).id for n in numbers]


def hold(client, schedule, seats):
    return client.post(
        "/api/v1/reservations", {"schedule_id": schedule.id, "seat_ids": seats}, format="json"
    )


def test_holding_seats_takes_eight_queries(admit, schedule, django_assert_num_queries):
    client = admit(schedule.concert)
    assert hold(client, schedule, seat_ids(schedule, 1)).status_code == 201  # caches the schedule
    wanted = seat_ids(schedule, 2, 3)

    # 1. the Bearer token and its user (accounts)
    # 2. first look at the wanted seats (with what the answer shows of them), outside any
    #    transaction
    #    (SAVEPOINT)
    # 3. lock the customer's row (their holds take turns: the 4-seat limit), reading their
    #    waiting waitlist entry in the same statement
    # 4. count the seats the customer holds or bought of this performance
    # 5. insert the reservation
    # 6. the conditional UPDATE that takes the seats seen available, if they still are at
    #    the grade and price seen: its row count proves it, so no lock before it
    # 7. insert the reservation's seats (one bulk insert)
    # 8. insert the reservation.held event (the outbox: it commits with the hold)
    #    (RELEASE SAVEPOINT)
    # The schedule and its concert come from the per-process cache; the answer is built from
    # what the hold has in hand, without reading the reservation back.
    with django_assert_num_queries(8 + 2):
        response = hold(client, schedule, wanted)

    assert response.status_code == 201
    assert [seat["id"] for seat in response.json()["seats"]] == wanted


def test_the_first_hold_of_a_schedule_in_a_process_also_reads_the_schedule(
    admit, schedule, django_assert_num_queries
):
    client = admit(schedule.concert)
    wanted = seat_ids(schedule, 1)

    with django_assert_num_queries(8 + 2 + 1):  # + the schedule with its concert
        assert hold(client, schedule, wanted).status_code == 201


def test_a_taken_seat_is_refused_after_two_queries(admit, schedule, django_assert_num_queries):
    client = admit(schedule.concert)
    taken, wanted = seat_ids(schedule, 1), seat_ids(schedule, 1, 2)
    assert hold(client, schedule, taken).status_code == 201  # taken, by this customer

    # 1. the Bearer token and its user
    # 2. first look at the wanted seats: one is taken, so no transaction, no lock
    with django_assert_num_queries(2):
        response = hold(client, schedule, wanted)

    assert response.status_code == 409
    assert response.json()["error"]["details"]["seat_ids"] == taken


def test_cancelling_a_hold_takes_nine_queries(customer, customer_client, django_assert_num_queries):
    reservation = held_reservation(user=customer, seat_prices=(100_000, 100_000))

    # 1. the Bearer token and its user
    #    (SAVEPOINT)
    # 2. lock the customer's reservation
    # 3. mark it cancelled
    # 4. the seats it still holds
    # 5. lock them in id order
    # 6. the UPDATE that frees them
    # 7. does the waitlist wait for seats of the performance (nobody does here)
    # 8. its seats, for the reservation.cancelled event
    # 9. insert the event
    # (+ the schedule with its concert: the event names the performance, and this process
    #  has not read it yet)
    #    (RELEASE SAVEPOINT)
    with django_assert_num_queries(9 + 2 + 1):
        response = customer_client.delete(f"/api/v1/reservations/{reservation.id}")

    assert response.status_code == 204
    assert not Seat.objects.filter(status=SeatStatus.HELD).exists()
