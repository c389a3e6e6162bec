from datetime import timedelta

import pytest
from django.utils import timezone

from concerts.models import Seat, SeatStatus
from queueing.services import queue_admit_tick
from reservations.models import Reservation, ReservationStatus
from tests.accounts.factories import UserFactory
from tests.concerts.factories import ScheduleFactory, SeatFactory
from tests.conftest import admitted_queue_token, client_for

pytestmark = pytest.mark.django_db


def error(response) -> dict:
    return response.json()["error"]


@pytest.fixture
def schedule():
    schedule = ScheduleFactory()
    for number in range(1, 9):
        SeatFactory(schedule=schedule, number=number, price=100_000 + number)
    return schedule


def seat_ids(schedule, *numbers):
    return [Seat.objects.get(schedule=schedule, number=n).id for n in numbers]


def test_the_whole_customer_flow_over_http(
    api_client, schedule, django_capture_on_commit_callbacks
):
    # Sign up and charge the wallet.
    signup = api_client.post(
        "/api/v1/accounts/signup",
        {"email": "fan@example.com", "password": "purple-stage-2026"},
        format="json",
    ).json()
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {signup['token']}")
    charge = api_client.post(
        "/api/v1/wallet/charges",
        {"amount": 300_000},
        format="json",
        HTTP_IDEMPOTENCY_KEY="0b6f4c0e-2b1c-4b7e-9a51-6d0f1f3b9f10",
    )
    assert (charge.status_code, charge.json()["balance"]) == (201, 300_000)

    # Enter the queue and get admitted.
    queue = api_client.post(f"/api/v1/concerts/{schedule.concert_id}/queue").json()
    queue_admit_tick(concert=schedule.concert)
    api_client.credentials(
        HTTP_AUTHORIZATION=f"Bearer {signup['token']}", HTTP_X_QUEUE_TOKEN=queue["token"]
    )
    assert api_client.get("/api/v1/queue").json()["status"] == "admitted"

    # See the seat map, hold two seats.
    seat_map = api_client.get(f"/api/v1/schedules/{schedule.id}/seats").json()
    wanted = [seat["id"] for seat in seat_map["seats"][:2]]
    # (The hold commits in production, which retires the cached seat map: run its on_commit.)
    with django_capture_on_commit_callbacks(execute=True):
        hold = api_client.post(
            "/api/v1/reservations", {"schedule_id": schedule.id, "seat_ids": wanted}, format="json"
        )
    assert hold.status_code == 201, hold.content
    reservation = hold.json()
    assert reservation["status"] == "held"
    assert reservation["total_price"] == 100_001 + 100_002
    assert reservation["booking_fee"] == 2 * 2_000  # the concert's default, per ticket
    assert reservation["amount_due"] == 200_003 + 4_000
    assert [seat["id"] for seat in reservation["seats"]] == wanted
    after_hold = api_client.get(f"/api/v1/schedules/{schedule.id}/seats").json()
    assert {s["id"]: s["status"] for s in after_hold["seats"] if s["id"] in wanted} == {
        wanted[0]: "held",
        wanted[1]: "held",
    }

    # Pay.
    with django_capture_on_commit_callbacks(execute=True):
        paid = api_client.post(
            f"/api/v1/reservations/{reservation['id']}/payment",
            HTTP_IDEMPOTENCY_KEY="5a3e0c57-8a8e-4c55-8f5e-2a9e8f4a1c11",
        )
    assert paid.status_code == 201, paid.content
    assert (paid.json()["amount"], paid.json()["booking_fee"]) == (204_003, 4_000)
    assert (
        api_client.get(f"/api/v1/reservations/{reservation['id']}").json()["status"] == "confirmed"
    )
    assert api_client.get("/api/v1/wallet").json()["balance"] == 300_000 - 204_003
    ledger = api_client.get("/api/v1/wallet/transactions").json()["results"]
    assert [(e["kind"], e["amount"]) for e in ledger] == [
        ("booking_fee", -4_000),
        ("payment", -200_003),
        ("charge", 300_000),
    ]
    assert api_client.get("/api/v1/payments").json()["count"] == 1
    sold = api_client.get(f"/api/v1/schedules/{schedule.id}/seats")
    # Paying freed the customer's queue slot: they are done shopping.
    assert error(sold)["code"] == "queue_token_expired"
    assert api_client.get("/api/v1/queue").json()["status"] == "done"
    assert set(Seat.objects.filter(id__in=wanted).values_list("status", flat=True)) == {"sold"}


def test_holding_needs_an_admitted_queue_token(customer_client, schedule):
    response = customer_client.post(
        "/api/v1/reservations",
        {"schedule_id": schedule.id, "seat_ids": seat_ids(schedule, 1)},
        format="json",
    )

    assert (response.status_code, error(response)["code"]) == (403, "queue_token_invalid")
    assert not Reservation.objects.exists()


def test_taken_seats_are_a_409_naming_them_and_nothing_is_held(customer, admit, schedule):
    client = admit(schedule.concert)
    taken = SeatFactory(schedule=schedule, number=99, status=SeatStatus.SOLD)

    response = client.post(
        "/api/v1/reservations",
        {"schedule_id": schedule.id, "seat_ids": [*seat_ids(schedule, 1), taken.id]},
        format="json",
    )

    assert response.status_code == 409
    assert error(response) == {
        "code": "seats_unavailable",
        "message": "Some of these seats are already taken.",
        "details": {"seat_ids": [taken.id]},
        "request_id": response["X-Request-ID"],
    }
    assert Seat.objects.get(id=seat_ids(schedule, 1)[0]).status == SeatStatus.AVAILABLE
    assert not Reservation.objects.filter(user=customer).exists()


def test_a_lapsed_hold_frees_its_seats_for_the_next_customer_at_once(customer, admit, schedule):
    client = admit(schedule.concert)
    wanted = seat_ids(schedule, 1, 2)
    first = client.post(
        "/api/v1/reservations", {"schedule_id": schedule.id, "seat_ids": wanted}, format="json"
    ).json()
    Reservation.objects.filter(id=first["id"]).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    Seat.objects.filter(id__in=wanted).update(hold_expires_at=timezone.now() - timedelta(seconds=1))
    assert client.get(f"/api/v1/reservations/{first['id']}").json()["status"] == "expired"

    rival = UserFactory()
    rival_client = client_for(rival)
    rival_client.credentials(
        HTTP_AUTHORIZATION=rival_client._credentials["HTTP_AUTHORIZATION"],
        HTTP_X_QUEUE_TOKEN=admitted_queue_token(user=rival, concert=schedule.concert),
    )
    response = rival_client.post(
        "/api/v1/reservations", {"schedule_id": schedule.id, "seat_ids": wanted}, format="json"
    )

    assert response.status_code == 201  # before any sweep has run
    late = client.post(f"/api/v1/reservations/{first['id']}/payment")
    assert (late.status_code, error(late)["code"]) == (410, "hold_expired")


@pytest.mark.parametrize(
    "payload, field",
    [
        ({}, "schedule_id"),
        ({"schedule_id": "x", "seat_ids": [1]}, "schedule_id"),
        ({"schedule_id": 1, "seat_ids": []}, "seat_ids"),
        ({"schedule_id": 1, "seat_ids": [1, 2, 3, 4, 5]}, "seat_ids"),
        ({"schedule_id": 1, "seat_ids": [1, 1]}, "seat_ids"),
        ({"schedule_id": 1, "seat_ids": "1,2"}, "seat_ids"),
        ({"schedule_id": 1, "seat_ids": [0]}, "seat_ids"),
        ({"schedule_id": 1, "seat_ids": [2**70]}, "seat_ids"),
    ],
)
def test_bad_hold_requests_are_validation_errors(customer_client, payload, field):
    response = customer_client.post("/api/v1/reservations", payload, format="json")

    assert response.status_code == 400
    assert field in error(response)["details"]


def test_seats_of_another_schedule_are_a_validation_error(admit, schedule):
    client = admit(schedule.concert)
    elsewhere = SeatFactory()

    response = client.post(
        "/api/v1/reservations",
        {"schedule_id": schedule.id, "seat_ids": [elsewhere.id]},
        format="json",
    )

    assert (response.status_code, error(response)["code"]) == (400, "validation_error")
    assert "seat_ids" in error(response)["details"]


def test_a_customer_holds_at_most_four_seats_of_a_performance(admit, schedule):
    client = admit(schedule.concert)
    hold = lambda *numbers: client.post(  # noqa: E731
        "/api/v1/reservations",
        {"schedule_id": schedule.id, "seat_ids": seat_ids(schedule, *numbers)},
        format="json",
    )

    assert hold(1, 2, 3).status_code == 201
    too_many = hold(4, 5)

    assert (too_many.status_code, error(too_many)["code"]) == (409, "ticket_limit_reached")
    assert error(too_many)["details"] == {"held": 3, "bought": 0, "waiting": 0, "limit": 4}
    assert hold(4).status_code == 201


def test_cancelling_a_hold_frees_its_seats_at_once(admit, schedule):
    client = admit(schedule.concert)
    wanted = seat_ids(schedule, 1, 2)
    reservation = client.post(
        "/api/v1/reservations", {"schedule_id": schedule.id, "seat_ids": wanted}, format="json"
    ).json()

    assert client.delete(f"/api/v1/reservations/{reservation['id']}").status_code == 204
    assert client.delete(f"/api/v1/reservations/{reservation['id']}").status_code == 204

    assert client.get(f"/api/v1/reservations/{reservation['id']}").json()["status"] == "cancelled"
    assert set(Seat.objects.filter(id__in=wanted).values_list("status", flat=True)) == {"available"}


def test_another_customers_reservation_is_invisible_everywhere(admit, schedule):
    owner = admit(schedule.concert)
    reservation = owner.post(
        "/api/v1/reservations",
        {"schedule_id": schedule.id, "seat_ids": seat_ids(schedule, 1)},
        format="json",
    ).json()
    stranger = client_for(UserFactory())
    path = f"/api/v1/reservations/{reservation['id']}"

    responses = [
        stranger.get(path),
        stranger.delete(path),
        stranger.post(f"{path}/payment"),
    ]

    assert [(r.status_code, error(r)["code"]) for r in responses] == [(404, "not_found")] * 3
    assert stranger.get("/api/v1/reservations").json()["count"] == 0
    assert Reservation.objects.get(id=reservation["id"]).status == ReservationStatus.HELD


def test_my_reservations_list_uses_a_fixed_number_of_queries(
    customer, customer_client, django_assert_max_num_queries
):
    from tests.reservations.factories import ReservationFactory, ReservationSeatFactory

    for _ in range(10):
        reservation = ReservationFactory(user=customer)
        for number in range(1, 4):
            ReservationSeatFactory(
                reservation=reservation,
                seat=SeatFactory(schedule=reservation.schedule, number=number),
            )

    with django_assert_max_num_queries(4):  # token, count, page with schedules, seats
        response = customer_client.get("/api/v1/reservations?page_size=100")

    assert response.json()["count"] == 10
    assert len(response.json()["results"][0]["seats"]) == 3
