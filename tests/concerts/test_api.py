import json
from datetime import timedelta

import pytest
from django.utils import timezone

from concerts.models import SeatStatus
from concerts.services import catalog_changed
from tests.concerts.factories import ConcertFactory, ScheduleFactory, SeatFactory

pytestmark = pytest.mark.django_db


def error_code(response) -> str:
    return response.json()["error"]["code"]


def test_concert_list_shows_published_concerts_soonest_first(api_client):
    now = timezone.now()
    later = ScheduleFactory(starts_at=now + timedelta(days=20)).concert
    sooner = ScheduleFactory(starts_at=now + timedelta(days=10)).concert
    ConcertFactory(is_published=False)
    no_dates_yet = ConcertFactory()

    response = api_client.get("/api/v1/concerts")

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 3
    assert [c["id"] for c in body["results"]] == [sooner.id, later.id, no_dates_yet.id]
    assert body["results"][0]["schedule_count"] == 1


def test_datetimes_carry_their_utc_offset(api_client):
    schedule = ScheduleFactory()

    body = api_client.get(f"/api/v1/concerts/{schedule.concert_id}").json()

    # ISO 8601 with an explicit offset (local time of TIME_ZONE), never a naive time.
    assert body["first_performance_at"].endswith("+09:00")
    assert timezone.datetime.fromisoformat(body["first_performance_at"]) == schedule.starts_at


def test_concert_list_paginates(api_client):
    ConcertFactory.create_batch(5)

    first = api_client.get("/api/v1/concerts?page_size=2").json()
    last = api_client.get("/api/v1/concerts?page_size=2&page=3").json()

    assert first["count"] == 5
    assert len(first["results"]) == 2
    assert first["next"].endswith("page=2&page_size=2")
    assert len(last["results"]) == 1
    assert last["next"] is None


@pytest.mark.parametrize(
    "query, field",
    [
        ("page_size=101", "page_size"),
        ("page_size=100000000000000000000", "page_size"),
        ("page_size=0", "page_size"),
        ("page_size=abc", "page_size"),
        ("page=0", "page"),
        ("page=-1", "page"),
        ("page=two", "page"),
    ],
)
def test_bad_paging_parameters_are_validation_errors(api_client, query, field):
    response = api_client.get(f"/api/v1/concerts?{query}")

    assert response.status_code == 400
    assert error_code(response) == "validation_error"
    assert field in response.json()["error"]["details"]


def test_a_page_past_the_end_is_not_found(api_client):
    ConcertFactory()

    response = api_client.get("/api/v1/concerts?page=2")

    assert response.status_code == 404
    assert error_code(response) == "not_found"


@pytest.mark.parametrize("path", ["/api/v1/concerts/{hidden}", "/api/v1/concerts/{missing}"])
def test_unpublished_and_unknown_concerts_are_not_found(api_client, path):
    hidden = ConcertFactory(is_published=False)

    response = api_client.get(path.format(hidden=hidden.id, missing=hidden.id + 1000))

    assert response.status_code == 404
    assert error_code(response) == "not_found"


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/concerts/99999999999999999999999",
        "/api/v1/concerts/abc",
        "/api/v1/concerts/1/",
        "/api/v1/nothing-here",
        "/api/v1/concerts/99999999999999999999999/schedules",
        "/api/v1/schedules/99999999999999999999999/seats",
    ],
)
def test_unknown_api_paths_and_ids_are_json_404s(customer_client, path):
    response = customer_client.get(path)

    assert response.status_code == 404
    assert error_code(response) == "not_found"


def test_schedules_count_seats_free_right_now(api_client):
    now = timezone.now()
    schedule = ScheduleFactory()
    SeatFactory.create_batch(2, schedule=schedule, price=99_000)
    SeatFactory(schedule=schedule, status=SeatStatus.SOLD, price=165_000)
    SeatFactory(
        schedule=schedule, status=SeatStatus.HELD, hold_expires_at=now + timedelta(minutes=5)
    )
    # A hold that ran out counts as free at once, before any sweep has tidied it.
    SeatFactory(
        schedule=schedule, status=SeatStatus.HELD, hold_expires_at=now - timedelta(seconds=1)
    )
    empty = ScheduleFactory(
        concert=schedule.concert, starts_at=schedule.starts_at + timedelta(days=1)
    )

    response = api_client.get(f"/api/v1/concerts/{schedule.concert_id}/schedules")

    assert response.status_code == 200
    first, second = response.json()["results"]
    assert first["id"] == schedule.id
    assert (first["total_seats"], first["available_seats"]) == (5, 3)
    assert (first["min_price"], first["max_price"]) == (99_000, 165_000)
    assert second["id"] == empty.id
    assert (second["total_seats"], second["available_seats"], second["min_price"]) == (0, 0, None)


def test_schedules_of_an_unpublished_concert_are_not_found(api_client):
    schedule = ScheduleFactory(concert__is_published=False)

    response = api_client.get(f"/api/v1/concerts/{schedule.concert_id}/schedules")

    assert response.status_code == 404


def test_seat_map_shows_each_seats_status_now(admit):
    now = timezone.now()
    schedule = ScheduleFactory()
    free = SeatFactory(schedule=schedule, section="A", row=1, number=1)
    sold = SeatFactory(schedule=schedule, section="A", row=1, number=2, status=SeatStatus.SOLD)
    held = SeatFactory(
        schedule=schedule,
        section="A",
        row=2,
        number=1,
        status=SeatStatus.HELD,
        hold_expires_at=now + timedelta(minutes=5),
    )
    lapsed = SeatFactory(
        schedule=schedule,
        section="B",
        row=1,
        number=1,
        status=SeatStatus.HELD,
        hold_expires_at=now - timedelta(seconds=1),
    )

    response = admit(schedule.concert).get(f"/api/v1/schedules/{schedule.id}/seats")

    assert response.status_code == 200
    body = response.json()
    assert body["schedule"]["id"] == schedule.id
    statuses = {seat["id"]: seat["status"] for seat in body["seats"]}
    assert statuses == {
        free.id: "available",
        sold.id: "sold",
        held.id: "held",
        lapsed.id: "available",
    }
    assert [s["id"] for s in body["seats"]] == [free.id, sold.id, held.id, lapsed.id]
    assert (body["available_seats"], body["total_seats"]) == (2, 4)
    assert body["seats"][0] == {
        "id": free.id,
        "section": "A",
        "row": 1,
        "number": 1,
        "grade": "R",
        "price": 110_000,
        "status": "available",
    }


def test_seat_map_needs_authentication(api_client):
    schedule = ScheduleFactory()

    response = api_client.get(f"/api/v1/schedules/{schedule.id}/seats")

    assert response.status_code == 401
    assert error_code(response) == "not_authenticated"


def test_seat_map_of_an_unpublished_concert_is_not_found(customer_client):
    schedule = ScheduleFactory(concert__is_published=False)

    response = customer_client.get(f"/api/v1/schedules/{schedule.id}/seats")

    assert response.status_code == 404


def test_catalog_lists_use_a_fixed_number_of_queries(api_client, django_assert_num_queries):
    for _ in range(10):
        schedule = ScheduleFactory()
        SeatFactory.create_batch(3, schedule=schedule)
    concert = schedule.concert
    ScheduleFactory.create_batch(5, concert=concert)

    with django_assert_num_queries(2):  # count + page
        assert api_client.get("/api/v1/concerts?page_size=100").status_code == 200
    with django_assert_num_queries(3):  # concert exists + count + page
        assert api_client.get(f"/api/v1/concerts/{concert.id}/schedules").status_code == 200
    with django_assert_num_queries(1):
        assert api_client.get(f"/api/v1/concerts/{concert.id}").status_code == 200


def test_seat_map_uses_three_queries_whatever_its_size_then_one(admit, django_assert_num_queries):
    schedule = ScheduleFactory()
    SeatFactory.create_batch(200, schedule=schedule)
    client = admit(schedule.concert)

    with django_assert_num_queries(3):  # token + schedule with concert + seats
        first = client.get(f"/api/v1/schedules/{schedule.id}/seats")
    with django_assert_num_queries(1):  # token; schedule and seats from the caches
        again = client.get(f"/api/v1/schedules/{schedule.id}/seats")

    assert len(first.json()["seats"]) == 200
    assert again.content == first.content
    assert again["Content-Type"] == "application/json"


def test_seat_map_changes_as_soon_as_a_hold_commits(admit, django_capture_on_commit_callbacks):
    schedule = ScheduleFactory()
    seats = SeatFactory.create_batch(3, schedule=schedule)
    client = admit(schedule.concert)
    path = f"/api/v1/schedules/{schedule.id}/seats"
    assert client.get(path).json()["available_seats"] == 3  # now cached

    with django_capture_on_commit_callbacks(execute=True):
        held = client.post(
            "/api/v1/reservations",
            {"schedule_id": schedule.id, "seat_ids": [seats[1].id]},
            format="json",
        )
    assert held.status_code == 201

    body = client.get(path).json()
    assert body["available_seats"] == 2
    assert [s["status"] for s in body["seats"]] == ["available", "held", "available"]


def test_cached_seat_map_shows_a_hold_free_the_moment_it_runs_out():
    from concerts.cache import seat_map_json

    now = timezone.now()
    schedule = ScheduleFactory()
    SeatFactory(
        schedule=schedule, status=SeatStatus.HELD, hold_expires_at=now + timedelta(seconds=30)
    )

    def available_at(moment) -> int:
        body = seat_map_json(schedule.id, schedule_part={"id": schedule.id}, now=moment)
        return json.loads(body)["available_seats"]

    assert available_at(now) == 0  # cached, with the hold's end
    assert available_at(now + timedelta(seconds=29)) == 0  # served from the cache
    # No write, no sweep: only the clock moved, and the cached body is not served any more.
    assert available_at(now + timedelta(seconds=30)) == 1


def test_a_repriced_seat_shows_its_new_price_at_once(admit, django_capture_on_commit_callbacks):
    from concerts.services import seat_reprice

    schedule = ScheduleFactory()
    seat = SeatFactory(schedule=schedule, price=110_000)
    client = admit(schedule.concert)
    path = f"/api/v1/schedules/{schedule.id}/seats"
    assert client.get(path).json()["seats"][0]["price"] == 110_000

    with django_capture_on_commit_callbacks(execute=True):
        seat_reprice(seat_id=seat.id, grade="R", price=99_000)

    assert client.get(path).json()["seats"][0]["price"] == 99_000


def test_catalog_reads_are_served_from_the_cache(api_client, django_assert_num_queries):
    concert = ScheduleFactory().concert
    paths = [
        "/api/v1/concerts",
        f"/api/v1/concerts/{concert.id}",
        f"/api/v1/concerts/{concert.id}/schedules",
    ]
    first = [api_client.get(path).json() for path in paths]

    with django_assert_num_queries(0):
        again = [api_client.get(path).json() for path in paths]

    assert again == first


def test_a_catalog_change_shows_at_once(api_client, django_capture_on_commit_callbacks):
    concert = ConcertFactory(title="Old title")
    assert api_client.get(f"/api/v1/concerts/{concert.id}").json()["title"] == "Old title"
    assert api_client.get("/api/v1/concerts").json()["results"][0]["title"] == "Old title"

    with django_capture_on_commit_callbacks(execute=True):
        concert.title = "New title"
        concert.save()
        catalog_changed()

    assert api_client.get(f"/api/v1/concerts/{concert.id}").json()["title"] == "New title"
    assert api_client.get("/api/v1/concerts").json()["results"][0]["title"] == "New title"
