"""The live on-sale dashboard against the real database and Redis: its numbers (seats by
state, money, sales per minute, the queue, the seat map), who may see it, and what a poll
costs."""

import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from redis.exceptions import ConnectionError as RedisConnectionError

import console
from concerts.models import Seat
from concerts.selectors import seat_map_build
from console import selectors
from console.views import dashboard_payload
from payments.cancellations import payment_refund, reservation_cancel_paid
from queueing.services import queue_admit_tick, queue_enter, queue_set_paused
from reservations.selectors import waitlist_waited_grades
from tests.accounts.factories import UserFactory
from tests.concerts.factories import ConcertFactory, ScheduleFactory
from tests.reservations.waitlist_helpers import buy, hold, join, seats_of

pytestmark = pytest.mark.django_db

R, VIP, FEE = 110_000, 165_000, 2_000  # the concert's booking fee is ₩2,000 a ticket


def data_url(schedule=None, *, concert=None, layout=False) -> str:
    concert = concert or schedule.concert
    url = reverse("console-dashboard-data", args=[concert.id])
    query = [f"schedule={schedule.id}"] if schedule else []
    if layout:
        query.append("layout=1")
    return url + ("?" + "&".join(query) if query else "")


def page_url(schedule=None, *, concert=None) -> str:
    concert = concert or schedule.concert
    url = reverse("console-dashboard", args=[concert.id])
    return f"{url}?schedule={schedule.id}" if schedule else url


def grade_row(data: dict, grade: str) -> dict:
    return next(row for row in data["inventory"]["rows"] if row["grade"] == grade)


@pytest.fixture
def sale():
    """Five R seats: three sold (two to one customer, one to another), one held now, one
    held by a hold that ran out (nobody waits, so it is available again)."""
    schedule = ScheduleFactory()
    seats = seats_of(schedule, "R", "A", rows=1, per_row=5, price=R)
    first = buy(schedule, seats[0], seats[1])
    second = buy(schedule, seats[2])
    hold(schedule, seats[3])
    hold(schedule, seats[4], now=timezone.now() - timedelta(minutes=30))
    return schedule, seats, first, second


def test_the_numbers_of_a_sale(operator_client, sale):
    schedule, seats, *_ = sale

    data = operator_client.get(data_url(schedule)).json()

    assert grade_row(data, "R") == {
        "grade": "R",
        "total": 5,
        "available": 1,  # the lapsed hold
        "held": 1,
        "offered": 0,
        "sold": 3,
    }
    assert data["inventory"]["total"]["sold"] == 3
    money = data["money"]
    assert money["payments"] == 2
    assert money["won"]["paid"] == 3 * (R + FEE)
    assert money["won"]["tickets_paid"] == 3 * R
    assert money["won"]["booking_fees"] == 3 * FEE
    assert money["won"]["refunded"] == 0
    assert money["shown"]["paid"] == "₩336,000"
    assert data["sales"]["tickets"] == 3
    assert data["sales"]["payments"] == 2
    assert len(data["sales"]["minutes"]) == 60
    assert data["seat_map"]["states"] == "sssha"  # A-1-1 .. A-1-5, in map order
    assert data["seat_map"]["counts"] == {"a": 1, "h": 1, "w": 0, "s": 3}


def test_a_refund_shows_as_money_back_and_a_seat_on_sale(operator, operator_client, sale):
    schedule, seats, first, second = sale
    payment_refund(
        payment_id=second.payment.id, operator=operator, in_full=True, reason="Show moved."
    )

    data = operator_client.get(data_url(schedule)).json()

    assert grade_row(data, "R")["sold"] == 2
    assert grade_row(data, "R")["available"] == 2
    won = data["money"]["won"]
    assert won["paid"] == 3 * (R + FEE)
    assert won["refunded"] == R + FEE  # in full: the booking fee too
    assert won["tickets_refunded"] == R
    assert won["booking_fees_refunded"] == FEE
    assert won["cancellation_fees"] == 0
    assert won["net"] == 2 * (R + FEE)
    assert won["net_tickets"] == 2 * R
    assert won["net_booking_fees"] == 2 * FEE
    assert data["money"]["cancellations"] == 1
    assert data["money"]["shown"]["refunded"] == "₩112,000"
    assert data["sales"]["tickets"] == 3  # sold in the last hour, whatever happened since


def test_a_lapsed_hold_of_a_grade_the_waitlist_waits_for_stays_held():
    schedule = ScheduleFactory()
    seats = seats_of(schedule, "R", "A", rows=1, per_row=2, price=R)
    buy(schedule, seats[0])
    hold(schedule, seats[1])
    join(schedule, grades=["R"])  # sold out: the hold takes the last seat
    later = timezone.now() + timedelta(minutes=30)  # the hold has run out; no sweep yet
    scope = selectors.dashboard_scope(concert_id=schedule.concert_id, schedule_id=schedule.id)

    data = dashboard_payload(scope, now=later, with_layout=True)

    assert grade_row(data, "R")["held"] == 1
    assert grade_row(data, "R")["available"] == 0
    # The seat map customers see says the same.
    seats_now, _ = seat_map_build(
        schedule_id=schedule.id,
        now=later,
        held_back=lambda: waitlist_waited_grades(schedule_id=schedule.id),
    )
    assert [seat["status"][0] for seat in seats_now] == list(data["seat_map"]["states"])


def test_seats_offered_to_the_waitlist_are_counted_apart():
    schedule = ScheduleFactory()
    vip = seats_of(schedule, "VIP", "A", rows=1, per_row=2, price=VIP)
    seats_of(schedule, "R", "B", rows=1, per_row=2, price=R)
    taken = buy(schedule, vip[0])
    buy(schedule, vip[1])
    entry = join(schedule, grades=["VIP"])
    reservation_cancel_paid(user=taken.user, reservation_id=taken.id)  # goes to the entry

    scope = selectors.dashboard_scope(concert_id=schedule.concert_id, schedule_id=schedule.id)
    data = dashboard_payload(scope, now=timezone.now(), with_layout=True)

    entry.refresh_from_db()
    assert entry.offer_id is not None
    assert grade_row(data, "VIP") == {
        "grade": "VIP",
        "total": 2,
        "available": 0,
        "held": 0,
        "offered": 1,
        "sold": 1,
    }
    assert [row["grade"] for row in data["inventory"]["rows"]] == ["VIP", "R"]  # dearest first
    assert data["seat_map"]["states"] == "wsaa"
    assert data["money"]["cancellations"] == 1
    assert [seat[1:] for seat in data["seat_map"]["layout"]] == [
        ["A", 1, 1, "VIP"],
        ["A", 1, 2, "VIP"],
        ["B", 1, 1, "R"],
        ["B", 1, 2, "R"],
    ]


def test_the_whole_concert_adds_up_its_performances(operator_client):
    concert = ConcertFactory()
    first, second = ScheduleFactory(concert=concert), ScheduleFactory(concert=concert)
    one = seats_of(first, "R", "A", rows=1, per_row=3, price=R)
    two = seats_of(second, "R", "A", rows=1, per_row=2, price=R)
    buy(first, one[0])
    buy(second, two[0], two[1])

    data = operator_client.get(data_url(concert=concert)).json()

    assert grade_row(data, "R")["total"] == 5
    assert grade_row(data, "R")["sold"] == 3
    assert [(row["sold"], row["available"]) for row in data["performances"]] == [(1, 2), (2, 0)]
    assert data["performances"][0]["url"] == page_url(first)
    assert data["seat_map"] is None  # a seat map is a performance's
    assert data["money"]["payments"] == 2


def test_the_queue_numbers(operator_client):
    schedule = ScheduleFactory(concert__queue_max_active=1)
    concert = schedule.concert
    for _ in range(3):
        queue_enter(concert_id=concert.id, user_id=UserFactory().id)
    queue_admit_tick(concert=concert)

    queue = operator_client.get(data_url(schedule)).json()["queue"]

    assert queue["available"] is True
    assert (queue["state"], queue["waiting"], queue["admitted"]) == ("admitting", 2, 1)
    assert queue["paused"] is False
    assert queue["eta_last"] != "—"

    queue_set_paused(concert_ids=[concert.id], paused=True)
    queue = operator_client.get(data_url(schedule)).json()["queue"]

    assert (queue["state"], queue["paused"], queue["eta_last"]) == ("paused", True, "—")


def test_without_redis_the_rest_of_the_dashboard_still_shows(operator_client, sale, monkeypatch):
    schedule, *_ = sale

    def down(**kwargs):
        raise RedisConnectionError("Redis is down")

    monkeypatch.setattr(selectors, "queue_stats", down)
    response = operator_client.get(data_url(schedule))

    assert response.status_code == 200
    data = response.json()
    assert data["queue"]["available"] is False
    assert "Redis" in data["queue"]["message"]
    assert grade_row(data, "R")["sold"] == 3


def test_the_layout_comes_only_when_asked(operator_client, sale):
    schedule, seats, *_ = sale

    plain = operator_client.get(data_url(schedule)).json()["seat_map"]
    full = operator_client.get(data_url(schedule, layout=True)).json()["seat_map"]

    assert "layout" not in plain
    assert full["key"] == plain["key"]
    assert [seat[0] for seat in full["layout"]] == [seat.id for seat in seats]


def test_a_regraded_seat_changes_the_layout_key(operator_client, sale):
    schedule, seats, *_ = sale
    before = operator_client.get(data_url(schedule)).json()["seat_map"]["key"]
    Seat.objects.filter(id=seats[4].id).update(grade="S")

    after = operator_client.get(data_url(schedule)).json()["seat_map"]["key"]

    assert after != before


def test_the_page_shows_the_numbers_and_polls_its_data(operator_client, sale):
    schedule, *_ = sale

    response = operator_client.get(page_url(schedule))

    assert response.status_code == 200
    page = response.content.decode()
    assert "console/dashboard.js" in page
    assert "console-dashboard-config" in page
    assert data_url(schedule).replace("&", "\\u0026") in page  # the JSON the script polls
    assert "₩336,000" in page
    assert reverse("console-export-buyers", args=[schedule.id]) in page
    assert reverse("console-export-payments", args=[schedule.id]) in page
    assert "admin/css/base.css" in page  # drawn in the admin's frame


def test_the_script_loads_nothing_from_the_internet():
    script = (Path(console.__file__).parent / "static/console/dashboard.js").read_text()

    assert re.findall(r"https?://[^\"' ]+", script) == ["http://www.w3.org/2000/svg"]  # a name
    assert "import " not in script


def test_the_concert_page_lists_its_performances(operator_client, sale):
    schedule, *_ = sale

    page = operator_client.get(page_url(concert=schedule.concert)).content.decode()

    assert page_url(schedule).replace("&", "&amp;") in page
    assert reverse("console-export-buyers", args=[schedule.id]) in page


@pytest.mark.parametrize(
    "url",
    [
        lambda s: page_url(s),
        lambda s: data_url(s),
        lambda s: reverse("console-index"),
    ],
    ids=["page", "data", "index"],
)
def test_only_staff_get_in(client, customer_web_client, sale, url):
    schedule, *_ = sale

    for visitor in (client, customer_web_client):
        response = visitor.get(url(schedule))
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("admin:login"))


def test_staff_without_the_permission_to_view_payments_are_refused(staff_client, sale):
    schedule, *_ = sale

    assert staff_client.get(data_url(schedule)).status_code == 403


def test_another_concerts_performance_is_not_found(operator_client, sale):
    schedule, *_ = sale
    other = ConcertFactory()

    url = reverse("console-dashboard-data", args=[other.id]) + f"?schedule={schedule.id}"

    assert operator_client.get(url).status_code == 404
    assert operator_client.get(data_url(concert=other) + "?schedule=x").status_code == 404


def test_the_index_links_every_concert_to_its_dashboard(operator_client, sale):
    schedule, *_ = sale

    page = operator_client.get(reverse("console-index")).content.decode()

    assert page_url(concert=schedule.concert) in page
    assert reverse("console-customers") in page
    assert reverse("console-export-ledger") in page


# --- What a poll costs -------------------------------------------------------------------------


def a_sale(*, seats: int, buyers: int):
    """A performance of `seats` R seats (made in one insert), `buyers` of them paid for
    through the real services, one held, one customer on the waitlist's books."""
    # The queue lets every buyer in at once (its token bucket would pace them otherwise).
    schedule = ScheduleFactory(concert__queue_admit_per_minute=100_000)
    Seat.objects.bulk_create(
        Seat(schedule=schedule, section="A", row=1 + n // 50, number=1 + n % 50, grade="R", price=R)
        for n in range(seats)
    )
    rows = list(Seat.objects.filter(schedule=schedule).order_by("id"))
    for seat in rows[:buyers]:
        buy(schedule, seat)
    hold(schedule, rows[buyers])
    return schedule


def queries_of(client, url) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


# The JSON endpoint's queries:
#  1. the session         2. its user (the admin's staff check; a superuser needs no more)
#  3. the concert         4. its performances
#  5. the grades waitlist entries wait for (a lapsed hold of one stays held)
#  6. seats GROUP BY performance, grade: counts by state
#  7. payments: count and sums    8. cancellations: sums of what went back
#  9. payments GROUP BY minute, the last 60 minutes
# 10. the performance's seats, for the seat map (id, place, grade, state, holder's source)
# The queue's numbers are one Redis round trip, not a query.
DASHBOARD_DATA_QUERIES = 10


def test_a_poll_costs_the_same_few_queries_however_big_the_sale(
    operator_client, django_assert_max_num_queries
):
    small = a_sale(seats=10, buyers=2)
    big = a_sale(seats=500, buyers=25)
    operator_client.get(data_url(small))  # the first request of a session may write it

    costs = [queries_of(operator_client, data_url(sale)) for sale in (small, big)]

    assert costs[0] == costs[1]
    with django_assert_max_num_queries(DASHBOARD_DATA_QUERIES):
        response = operator_client.get(data_url(big, layout=True))
    assert len(response.json()["seat_map"]["layout"]) == 500
    assert response.json()["money"]["payments"] == 25


def test_the_whole_concert_costs_no_more(operator_client, django_assert_max_num_queries):
    sale = a_sale(seats=500, buyers=5)
    ScheduleFactory(concert=sale.concert)

    with django_assert_max_num_queries(DASHBOARD_DATA_QUERIES - 1):  # no seat map
        operator_client.get(data_url(concert=sale.concert))


def test_the_admin_front_page_leads_to_the_console(operator_client):
    page = operator_client.get("/admin/").content.decode()

    assert 'href="/admin/console/"' in page and 'href="/admin/console/customers/"' in page
