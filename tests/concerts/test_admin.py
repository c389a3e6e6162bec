import re

import pytest
from django.test import Client

from concerts.models import (
    Concert,
    Schedule,
    Seat,
    SeatStatus,
    standard_cancellation_policy_id,
)
from tests.accounts.factories import OperatorFactory
from tests.concerts.factories import ScheduleFactory, SeatFactory
from tests.reservations.factories import hold_seats

pytestmark = pytest.mark.django_db


def test_operator_creates_a_concert_generates_seats_and_customers_see_them(
    operator_client, api_client, admit, django_capture_on_commit_callbacks
):
    assert api_client.get("/api/v1/concerts").json()["count"] == 0  # warms the cache

    with django_capture_on_commit_callbacks(execute=True):
        response = operator_client.post(
            "/admin/concerts/concert/add/",
            {
                "title": "First Light",
                "artist": "Haneul",
                "venue": "Olympic Hall",
                "description": "",
                "is_published": "on",
                "sale_opens_at_0": "2020-12-01",
                "sale_opens_at_1": "20:00:00",
                "queue_max_active": "100",
                "queue_admit_per_minute": "300",
                "queue_admitted_minutes": "10",
                "queue_claim_seconds": "30",
                "queue_abandon_after_seconds": "300",
                "hold_minutes": "5",
                "ticket_limit": "4",
                "booking_fee": "2000",
                "waitlist_enabled": "on",
                "offer_minutes": "30",
                "cancellation_policy": str(standard_cancellation_policy_id()),
                "schedules-TOTAL_FORMS": "1",
                "schedules-INITIAL_FORMS": "0",
                "schedules-MIN_NUM_FORMS": "0",
                "schedules-MAX_NUM_FORMS": "1000",
                "schedules-0-starts_at_0": "2026-12-24",
                "schedules-0-starts_at_1": "19:00:00",
                "schedules-0-ends_at_0": "2026-12-24",
                "schedules-0-ends_at_1": "21:30:00",
            },
        )
    assert response.status_code == 302, response.content.decode()[:2000]
    concert = Concert.objects.get(title="First Light")
    schedule = concert.schedules.get()

    generate_url = f"/admin/concerts/schedule/{schedule.id}/generate-seats/"
    assert operator_client.get(generate_url).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        response = operator_client.post(
            generate_url,
            {
                "blocks-TOTAL_FORMS": "3",
                "blocks-INITIAL_FORMS": "0",
                "blocks-MIN_NUM_FORMS": "1",
                "blocks-MAX_NUM_FORMS": "50",
                "blocks-0-section": "A",
                "blocks-0-grade": "VIP",
                "blocks-0-price": "165000",
                "blocks-0-first_row": "1",
                "blocks-0-rows": "5",
                "blocks-0-seats_per_row": "10",
                "blocks-1-first_row": "1",  # untouched extra lines are ignored
                "blocks-2-first_row": "1",
            },
        )
    assert response.status_code == 302
    assert Seat.objects.filter(schedule=schedule).count() == 50

    listed = api_client.get("/api/v1/concerts").json()
    assert [c["title"] for c in listed["results"]] == ["First Light"]
    dates = api_client.get(f"/api/v1/concerts/{concert.id}/schedules").json()["results"]
    assert (dates[0]["total_seats"], dates[0]["available_seats"]) == (50, 50)
    seat_map = admit(concert).get(f"/api/v1/schedules/{schedule.id}/seats").json()
    assert len(seat_map["seats"]) == 50
    assert {seat["price"] for seat in seat_map["seats"]} == {165_000}


def test_generate_form_shows_service_errors_and_writes_nothing(operator_client):
    schedule = ScheduleFactory()
    SeatFactory(schedule=schedule, section="A", row=1, number=1)

    response = operator_client.post(
        f"/admin/concerts/schedule/{schedule.id}/generate-seats/",
        {
            "blocks-TOTAL_FORMS": "1",
            "blocks-INITIAL_FORMS": "0",
            "blocks-MIN_NUM_FORMS": "1",
            "blocks-MAX_NUM_FORMS": "50",
            "blocks-0-section": "A",
            "blocks-0-grade": "R",
            "blocks-0-price": "1000",
            "blocks-0-first_row": "1",
            "blocks-0-rows": "1",
            "blocks-0-seats_per_row": "3",
        },
    )

    assert response.status_code == 200
    assert "already exist" in response.content.decode()
    assert schedule.seats.count() == 1


def test_generate_action_applies_one_map_to_several_schedules(operator_client):
    schedules = ScheduleFactory.create_batch(2)

    response = operator_client.post(
        "/admin/concerts/schedule/",
        {"action": "generate_seat_map", "_selected_action": [s.id for s in schedules]},
    )
    assert response.status_code == 302
    target = response["Location"]
    assert re.search(r"generate-seats/\?ids=\d+,\d+$", target)

    operator_client.post(
        target,
        {
            "blocks-TOTAL_FORMS": "1",
            "blocks-INITIAL_FORMS": "0",
            "blocks-MIN_NUM_FORMS": "1",
            "blocks-MAX_NUM_FORMS": "50",
            "blocks-0-section": "B",
            "blocks-0-grade": "S",
            "blocks-0-price": "99000",
            "blocks-0-first_row": "1",
            "blocks-0-rows": "2",
            "blocks-0-seats_per_row": "4",
        },
    )
    assert [Schedule.objects.get(id=s.id).seats.count() for s in schedules] == [8, 8]


def test_customers_cannot_reach_the_admin(client):
    from tests.accounts.factories import UserFactory

    client.force_login(UserFactory())

    response = client.get("/admin/concerts/concert/")

    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


@pytest.mark.parametrize(
    "path",
    [
        "/admin/",
        "/admin/concerts/concert/",
        "/admin/concerts/concert/add/",
        "/admin/concerts/schedule/",
        "/admin/concerts/seat/",
        "/admin/accounts/user/",
        "/admin/accounts/user/add/",
    ],
)
def test_operator_screens_render(operator_client, path):
    seat = SeatFactory()

    assert operator_client.get(path).status_code == 200
    assert (
        operator_client.get(
            f"/admin/concerts/concert/{seat.schedule.concert_id}/change/"
        ).status_code
        == 200
    )
    assert (
        operator_client.get(f"/admin/concerts/schedule/{seat.schedule_id}/change/").status_code
        == 200
    )
    assert operator_client.get(f"/admin/concerts/seat/{seat.id}/change/").status_code == 200
    seats = operator_client.get(f"/admin/concerts/seat/?schedule__id__exact={seat.schedule_id}")
    assert seats.status_code == 200
    assert "₩110,000" in seats.content.decode()


def test_a_stale_admin_form_cannot_undo_a_sale(customer):
    schedule = ScheduleFactory()
    seat = SeatFactory(schedule=schedule, price=100_000)
    operator = Client()
    operator.force_login(OperatorFactory())
    form_page = operator.get(f"/admin/concerts/seat/{seat.id}/change/")
    assert form_page.status_code == 200
    hold_seats(customer, schedule, seat)  # a customer takes the seat while the form is open

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


def test_refunding_a_whole_performance_asks_first_then_queues_a_job(
    operator_client, customer, django_capture_on_commit_callbacks, monkeypatch
):
    from payments.models import RefundJob
    from payments.services import payment_create, wallet_charge

    schedule = ScheduleFactory()
    wallet_charge(user=customer, amount=500_000)
    reservation = hold_seats(customer, schedule, SeatFactory(schedule=schedule))
    payment_create(user=customer, reservation_id=reservation.id)
    queued = []
    monkeypatch.setattr("payments.tasks.run_refund_job.delay", queued.append)
    form = {"action": "refund_performance", "_selected_action": [schedule.id]}

    page = operator_client.post("/admin/concerts/schedule/", form)
    assert page.status_code == 200 and "No money moves until you confirm" in page.content.decode()
    assert not RefundJob.objects.exists()

    with django_capture_on_commit_callbacks(execute=True):
        done = operator_client.post(
            "/admin/concerts/schedule/",
            {**form, "confirmed": "yes", "mode": "full", "reason": "The artist is ill."},
        )

    job = RefundJob.objects.get()
    assert done.status_code == 302
    assert (job.total, job.kind, job.reason, queued) == (
        1,
        "operator_full",
        "The artist is ill.",
        [job.id],
    )
