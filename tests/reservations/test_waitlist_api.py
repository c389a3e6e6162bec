"""The waitlist over HTTP: joining, places in line, offers, leaving; every refusal in the
one error shape with nothing written; the seat map never shows a seat the line waits for;
and the operator's pages."""

import time
from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.utils import timezone

from concerts.models import Concert
from config.localcache import LocalCache
from payments.cancellations import reservation_cancel_paid
from reservations.models import WaitlistEntry, WaitlistStatus
from reservations.services import reservation_cancel
from tests.accounts.factories import UserFactory
from tests.concerts.factories import ScheduleFactory, SeatFactory
from tests.conftest import admitted_queue_token, client_for
from tests.reservations.waitlist_helpers import buy, hold, join

pytestmark = pytest.mark.django_db


def error(response) -> dict:
    return response.json()["error"]


@pytest.fixture
def sold_out():
    """A performance with 2 VIP and 2 R seats, every one sold."""
    schedule = ScheduleFactory()
    vip = [SeatFactory(schedule=schedule, grade="VIP", price=165_000) for _ in range(2)]
    r = [SeatFactory(schedule=schedule, grade="R", price=110_000) for _ in range(2)]
    schedule.bookings = [buy(schedule, *vip), buy(schedule, *r)]
    return schedule


def test_a_customer_joins_sees_their_place_and_gets_an_offer(sold_out, customer_client):
    url = f"/api/v1/schedules/{sold_out.id}/waitlist"
    join(sold_out, grades=["VIP"])  # someone was first for VIP

    joined = customer_client.post(url, {"quantity": 1, "grades": ["R", "VIP"]}, format="json")
    again = customer_client.post(url, {"quantity": 1, "grades": ["R", "VIP"]}, format="json")

    assert joined.status_code == 201, joined.json()
    assert again.status_code == 200 and again.json()["id"] == joined.json()["id"]
    body = joined.json()
    assert body["status"] == "waiting" and body["grades"] == ["R", "VIP"]
    assert body["places"] == {"R": 1, "VIP": 2}
    assert body["offer"] is None and body["events"] == []

    # An R booking is cancelled: its two seats come back; this customer waits for one.
    vip_booking, r_booking = sold_out.bookings
    reservation_cancel_paid(user=r_booking.user, reservation_id=r_booking.id)
    [mine] = customer_client.get("/api/v1/waitlist").json()["results"]

    assert mine["status"] == "offered" and mine["places"] == {}
    assert mine["offer"]["status"] == "held"
    assert [seat["grade"] for seat in mine["offer"]["seats"]] == ["R"]
    assert mine["offer"]["amount_due"] == 110_000 + 2_000
    assert [event["kind"] for event in mine["events"]] == ["offered"]


def test_joining_while_seats_are_on_sale_is_refused(customer_client):
    schedule = ScheduleFactory()
    SeatFactory(schedule=schedule, grade="R")
    sold = SeatFactory(schedule=schedule, grade="VIP")
    buy(schedule, sold)
    url = f"/api/v1/schedules/{schedule.id}/waitlist"

    on_sale = customer_client.post(url, {"quantity": 1, "grades": ["R"]}, format="json")
    any_grade = customer_client.post(url, {"quantity": 1}, format="json")
    two_wanted = customer_client.post(url, {"quantity": 2}, format="json")  # only one free

    assert on_sale.status_code == 409 and error(on_sale)["code"] == "seats_available"
    assert error(on_sale)["details"] == {"available": 1, "grades": ["R"]}
    assert any_grade.status_code == 409
    assert two_wanted.status_code == 201
    assert WaitlistEntry.objects.count() == 1


@pytest.mark.parametrize(
    "payload, field",
    [
        ({}, "quantity"),
        ({"quantity": 0}, "quantity"),
        ({"quantity": 5}, "quantity"),
        ({"quantity": "2"}, None),  # DRF takes "2"; fine for a count
        ({"quantity": 1, "grades": []}, "grades"),
        ({"quantity": 1, "grades": ["R", "R"]}, "grades"),
        ({"quantity": 1, "grades": ["Balcony"]}, "grades"),
        ({"quantity": 1, "grade": ["R"]}, "grade"),  # misspelt: refused, not "any grade"
        ({"quantity": 1, "auto_pay": True}, "max_total"),
        ({"quantity": 1, "auto_pay": True, "max_total": "100000"}, "max_total"),
    ],
)
def test_bad_join_requests_are_validation_errors_and_write_nothing(
    sold_out, customer_client, payload, field
):
    response = customer_client.post(
        f"/api/v1/schedules/{sold_out.id}/waitlist", payload, format="json"
    )

    if field is None:
        assert response.status_code == 201
        return
    assert response.status_code == 400, response.json()
    assert error(response)["code"] == "validation_error"
    assert field in error(response)["details"]
    assert not WaitlistEntry.objects.exists()


def test_refusals_of_joining(sold_out, customer, customer_client):
    url = f"/api/v1/schedules/{sold_out.id}/waitlist"
    customer_client.post(url, {"quantity": 2, "grades": ["VIP"]}, format="json")

    other_request = customer_client.post(url, {"quantity": 1}, format="json")
    unknown = customer_client.post(
        "/api/v1/schedules/999999/waitlist", {"quantity": 1}, format="json"
    )
    Concert.objects.filter(id=sold_out.concert_id).update(waitlist_enabled=False)
    LocalCache.clear_all()  # as every web process has after LOCAL_CACHE_SECONDS
    closed = client_for(UserFactory()).post(url, {"quantity": 1}, format="json")

    assert other_request.status_code == 409
    assert error(other_request)["code"] == "waitlist_entry_exists"
    assert unknown.status_code == 404 and error(unknown)["code"] == "not_found"
    assert closed.status_code == 409 and error(closed)["code"] == "waitlist_closed"
    assert WaitlistEntry.objects.count() == 1


def test_joining_over_the_ticket_limit_is_refused(customer):
    schedule = ScheduleFactory()
    seats = [SeatFactory(schedule=schedule) for _ in range(4)]
    buy(schedule, *seats[:3], buyer=customer)
    buy(schedule, seats[3])

    response = client_for(customer).post(
        f"/api/v1/schedules/{schedule.id}/waitlist", {"quantity": 2}, format="json"
    )

    assert response.status_code == 409
    assert error(response)["details"] == {"held": 0, "bought": 3, "waiting": 0, "limit": 4}


def test_leaving_is_idempotent_and_another_customers_entry_is_not_found(sold_out):
    entry = join(sold_out)
    mine = client_for(entry.user)

    assert client_for(UserFactory()).delete(f"/api/v1/waitlist/{entry.id}").status_code == 404
    assert mine.delete(f"/api/v1/waitlist/{entry.id}").status_code == 204
    assert mine.delete(f"/api/v1/waitlist/{entry.id}").status_code == 204
    entry.refresh_from_db()
    assert entry.status == WaitlistStatus.LEFT
    # Left, the customer may join again.
    again = mine.post(f"/api/v1/schedules/{sold_out.id}/waitlist", {"quantity": 1}, format="json")
    assert again.status_code == 201


def test_the_seat_map_shows_a_lapsed_hold_held_while_the_line_waits_for_its_grade(customer):
    now = timezone.now()
    schedule = ScheduleFactory()
    vip, r = SeatFactory(schedule=schedule, grade="VIP"), SeatFactory(schedule=schedule, grade="R")
    past = now - timedelta(minutes=schedule.concert.hold_minutes, seconds=1)
    lapsed_vip = hold(schedule, vip, now=past + timedelta(seconds=2))  # runs out in a second
    hold(schedule, r, now=past)  # has run out
    join(schedule, grades=["VIP"], user=UserFactory())
    client = client_for(customer)
    token = admitted_queue_token(user=customer, concert=schedule.concert)

    def statuses():
        seats = client.get(
            f"/api/v1/schedules/{schedule.id}/seats", HTTP_X_QUEUE_TOKEN=token
        ).json()["seats"]
        return {seat["grade"]: seat["status"] for seat in seats}

    assert statuses() == {"VIP": "held", "R": "available"}  # nobody waits for R
    time.sleep(max(0.0, (lapsed_vip.expires_at - timezone.now()).total_seconds()) + 0.1)
    assert statuses() == {"VIP": "held", "R": "available"}  # lapsed, but the line's
    hold_vip = client.post(
        "/api/v1/reservations",
        {"schedule_id": schedule.id, "seat_ids": [vip.id]},
        format="json",
        HTTP_X_QUEUE_TOKEN=token,
    )
    assert hold_vip.status_code == 409 and error(hold_vip)["code"] == "seats_unavailable"


def test_an_offer_declined_over_delete_reservation_moves_on(sold_out):
    first, second = join(sold_out, grades=["R"]), join(sold_out, grades=["R"])
    third = join(sold_out, grades=["R"])
    vip_booking, r_booking = sold_out.bookings
    reservation_cancel_paid(
        user=r_booking.user, reservation_id=r_booking.id, seat_ids=[r_booking.items.first().seat_id]
    )
    first.refresh_from_db()

    response = client_for(first.user).delete(f"/api/v1/reservations/{first.offer_id}")

    assert response.status_code == 204
    second.refresh_from_db()
    third.refresh_from_db()
    assert second.status == WaitlistStatus.OFFERED and third.status == WaitlistStatus.WAITING
    listed = client_for(first.user).get("/api/v1/waitlist").json()["results"][0]
    assert listed["status"] == "left"
    assert [event["kind"] for event in listed["events"]] == ["offered", "declined"]
    # A declined offer cannot be declined again.
    assert reservation_cancel(user=first.user, reservation_id=first.offer_id) is None


def test_operators_see_the_line_and_its_numbers_and_steer_it(sold_out, operator_client):
    waiting = [join(sold_out, grades=["VIP"]), join(sold_out, quantity=2), join(sold_out)]
    vip_booking, _ = sold_out.bookings
    reservation_cancel_paid(user=vip_booking.user, reservation_id=vip_booking.id)

    page = operator_client.get(
        f"/admin/reservations/waitlistentry/?schedule__id__exact={sold_out.id}"
    )
    detail = operator_client.get(f"/admin/reservations/waitlistentry/{waiting[1].id}/change/")
    schedules = operator_client.get("/admin/concerts/schedule/")

    assert page.status_code == 200
    text = page.content.decode()
    assert "1 waiting" in text and "2 made" in text
    assert detail.status_code == 200 and "offered" in detail.content.decode()
    assert f"?schedule__id__exact={sold_out.id}" in schedules.content.decode()

    remove = {"action": "remove_from_waitlist", "_selected_action": [waiting[2].id]}
    waiting[2].refresh_from_db()
    assert waiting[2].status == WaitlistStatus.OFFERED
    asked = operator_client.post("/admin/reservations/waitlistentry/", remove)
    shown = asked.content.decode().replace("<wbr>", "")  # emails may wrap before the @
    assert asked.status_code == 200 and waiting[2].user.email in shown
    waiting[2].refresh_from_db()
    assert waiting[2].status == WaitlistStatus.OFFERED  # nothing moves before the reason
    removed = operator_client.post(
        "/admin/reservations/waitlistentry/",
        {**remove, "confirmed": "yes", "reason": "Asked us by phone."},
    )
    off = operator_client.post(
        "/admin/concerts/concert/",
        {"action": "waitlist_off", "_selected_action": [sold_out.concert_id]},
    )
    assert removed.status_code == 302 and off.status_code == 302
    waiting[2].refresh_from_db()
    assert waiting[2].status == WaitlistStatus.LEFT
    assert waiting[2].offer.status == "cancelled"  # the offer declined, its seat handed on
    history = LogEntry.objects.get(object_id=str(waiting[2].id))
    assert "Asked us by phone." in history.change_message
    assert not Concert.objects.get(id=sold_out.concert_id).waitlist_enabled
