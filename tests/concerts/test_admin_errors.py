"""Admin says what is wrong in a sentence: a form that breaks a database constraint shows
the constraint's own words on the field, and a delete the books forbid (the object has
sales) is refused with the reason and what to do instead."""

import pytest
from django.contrib.auth import get_user_model

from concerts.models import CancellationPolicy, Concert, Schedule, Seat
from tests.accounts.factories import UserFactory
from tests.concerts.factories import ConcertFactory, ScheduleFactory, SeatFactory
from tests.reservations.waitlist_helpers import buy, hold, join, seats_of

pytestmark = pytest.mark.django_db

RAW = [
    "is violated",
    "protected related objects",
    "doesn't have permission to delete",
    "object (",
]


def assert_readable(text: str) -> None:
    assert not [raw for raw in RAW if raw in text]


def field_errors(response, field: str) -> list[str]:
    """The errors admin shows on a field of the change form (or of an inline's form)."""
    errors = []
    for form in [response.context["adminform"].form, *_inline_forms(response)]:
        errors += [str(error) for error in form.errors.get(field, [])]
    return errors


def _inline_forms(response):
    for formset in response.context.get("inline_admin_formsets", []):
        yield from formset.formset.forms


# --- Constraints, in the forms --------------------------------------------------------------


def schedule_form(schedule, *, starts: str, ends: str) -> dict:
    return {
        "concert": schedule.concert_id,
        "starts_at_0": starts.split()[0],
        "starts_at_1": starts.split()[1],
        "ends_at_0": ends.split()[0],
        "ends_at_1": ends.split()[1],
    }


def test_a_performance_ending_before_it_starts_says_so_on_the_field(operator_client):
    schedule = ScheduleFactory()

    response = operator_client.post(
        f"/admin/concerts/schedule/{schedule.id}/change/",
        schedule_form(schedule, starts="2026-12-24 19:00:00", ends="2026-12-24 18:00:00"),
    )

    assert response.status_code == 200
    assert field_errors(response, "ends_at") == ["The performance must end after it starts."]
    assert_readable(response.content.decode())
    assert Schedule.objects.get(id=schedule.id).ends_at == schedule.ends_at


def test_the_same_in_the_concerts_list_of_dates(operator_client):
    concert = ConcertFactory()
    form = {
        field: getattr(concert, field)
        for field in ("title", "artist", "venue", "booking_fee", "cancellation_policy_id")
    }
    form["cancellation_policy"] = form.pop("cancellation_policy_id")
    for field in (
        "queue_max_active",
        "queue_admit_per_minute",
        "queue_admitted_minutes",
        "queue_abandon_after_seconds",
        "queue_claim_seconds",
        "hold_minutes",
        "ticket_limit",
        "offer_minutes",
    ):
        form[field] = getattr(concert, field)
    form |= {
        "schedules-TOTAL_FORMS": "1",
        "schedules-INITIAL_FORMS": "0",
        "schedules-MIN_NUM_FORMS": "0",
        "schedules-MAX_NUM_FORMS": "1000",
        "schedules-0-starts_at_0": "2026-12-24",
        "schedules-0-starts_at_1": "19:00:00",
        "schedules-0-ends_at_0": "2026-12-24",
        "schedules-0-ends_at_1": "19:00:00",
    }

    response = operator_client.post(f"/admin/concerts/concert/{concert.id}/change/", form)

    assert response.status_code == 200
    assert field_errors(response, "ends_at") == ["The performance must end after it starts."]
    assert_readable(response.content.decode())
    assert not concert.schedules.exists()


def seat_form(schedule, **values) -> dict:
    form = {
        "schedule": schedule.id,
        "section": "A",
        "row": "1",
        "number": "1",
        "grade": "R",
        "price": "1000",
    }
    return form | {name: str(value) for name, value in values.items()}


def test_a_seat_that_exists_already_says_so(operator_client):
    seat = SeatFactory(section="A", row=1, number=1)

    response = operator_client.post("/admin/concerts/seat/add/", seat_form(seat.schedule))

    assert response.status_code == 200
    text = response.content.decode()
    assert "This performance already has a seat with this section, row and number." in text
    assert_readable(text)
    assert Seat.objects.filter(schedule=seat.schedule).count() == 1


@pytest.mark.parametrize(
    "field, value, sentence",
    [
        ("price", 0, "A seat costs at least ₩1."),
        ("row", 0, "Rows and seat numbers start at 1."),
        ("number", 0, "Rows and seat numbers start at 1."),
    ],
)
def test_a_seat_out_of_range_says_so_on_the_field(operator_client, field, value, sentence):
    schedule = ScheduleFactory()

    response = operator_client.post(
        "/admin/concerts/seat/add/", seat_form(schedule, **{field: value})
    )

    assert response.status_code == 200
    assert field_errors(response, field) == [sentence]
    assert_readable(response.content.decode())
    assert not Seat.objects.filter(schedule=schedule).exists()


def test_a_fee_tier_running_backwards_says_so_on_the_field(operator_client):
    response = operator_client.post(
        "/admin/concerts/cancellationpolicy/add/",
        {
            "name": "Backwards",
            "free_window_days": "7",
            "free_window_min_days_before": "10",
            "cutoff_days_before": "1",
            "cutoff_time": "17:00:00",
            "tiers-TOTAL_FORMS": "1",
            "tiers-INITIAL_FORMS": "0",
            "tiers-MIN_NUM_FORMS": "0",
            "tiers-MAX_NUM_FORMS": "1000",
            "tiers-0-min_days_before": "9",
            "tiers-0-max_days_before": "7",
            "tiers-0-percent": "10",
            "tiers-0-flat_won": "0",
        },
    )

    assert response.status_code == 200
    assert field_errors(response, "max_days_before") == [
        "“To D-” must be at least “from D-”, e.g. from D-7 to D-9."
    ]
    assert_readable(response.content.decode())
    assert not CancellationPolicy.objects.filter(name="Backwards").exists()


def test_a_concert_setting_below_one_says_so_on_the_field(operator_client):
    concert = ConcertFactory()

    response = operator_client.post(
        f"/admin/queueing/concertqueue/{concert.id}/change/",
        {
            "queue_max_active": "0",
            "queue_admit_per_minute": "1200",
            "queue_admitted_minutes": "8",
            "queue_claim_seconds": "30",
            "queue_abandon_after_seconds": "120",
        },
    )

    assert response.status_code == 200
    assert field_errors(response, "queue_max_active")
    assert_readable(response.content.decode())


# --- Deletes the books forbid ---------------------------------------------------------------


@pytest.fixture
def sold():
    """A performance with a paid booking, a hold and a waitlist entry."""
    schedule = ScheduleFactory()
    seats = seats_of(schedule, "R", "A", rows=1, per_row=2, price=99_000)
    buy(schedule, seats[0])
    hold(schedule, seats[1])
    join(schedule)
    return schedule


def test_a_concert_with_sales_cannot_be_deleted_and_the_page_says_why(operator_client, sold):
    url = f"/admin/concerts/concert/{sold.concert_id}/delete/"

    page = operator_client.get(url)
    operator_client.post(url, {"post": "yes"})

    text = page.content.decode()
    assert page.status_code == 200
    assert "cannot be deleted" in text
    assert "has sales: 2 reservations and 1 waitlist entry" in text
    assert "Unpublish selected concerts" in text  # what to do instead
    assert_readable(text)
    assert Concert.objects.filter(id=sold.concert_id).exists()


def test_deleting_selected_concerts_with_sales_is_refused_the_same_way(operator_client, sold):
    other = ConcertFactory()
    form = {"action": "delete_selected", "_selected_action": [sold.concert_id, other.id]}

    page = operator_client.post("/admin/concerts/concert/", form)
    operator_client.post("/admin/concerts/concert/", {**form, "post": "yes"})

    text = page.content.decode()
    assert page.status_code == 200
    assert "has sales" in text and "Unpublish selected concerts" in text
    assert_readable(text)
    assert Concert.objects.filter(id__in=[sold.concert_id, other.id]).count() == 2


def test_a_performance_with_sales_cannot_be_deleted(operator_client, sold):
    url = f"/admin/concerts/schedule/{sold.id}/delete/"

    page = operator_client.get(url)
    operator_client.post(url, {"post": "yes"})

    text = page.content.decode()
    assert "has sales" in text and "Refund every paid booking" in text
    assert_readable(text)
    assert Schedule.objects.filter(id=sold.id).exists()


def test_a_performance_with_sales_cannot_be_deleted_from_its_concert(operator_client, sold):
    concert = sold.concert
    page = operator_client.get(f"/admin/concerts/concert/{concert.id}/change/")
    form = {
        key: value
        for key, value in page.context["adminform"].form.initial.items()
        if value is not None and key != "sale_opens_at"
    }
    formset = page.context["inline_admin_formsets"][0].formset
    form |= {
        "schedules-TOTAL_FORMS": "1",
        "schedules-INITIAL_FORMS": "1",
        "schedules-MIN_NUM_FORMS": "0",
        "schedules-MAX_NUM_FORMS": "1000",
        "schedules-0-id": str(sold.id),
        "schedules-0-concert": str(concert.id),
        "schedules-0-starts_at_0": f"{formset.forms[0].initial['starts_at']:%Y-%m-%d}",
        "schedules-0-starts_at_1": f"{formset.forms[0].initial['starts_at']:%H:%M:%S}",
        "schedules-0-ends_at_0": f"{formset.forms[0].initial['ends_at']:%Y-%m-%d}",
        "schedules-0-ends_at_1": f"{formset.forms[0].initial['ends_at']:%H:%M:%S}",
        "schedules-0-DELETE": "on",
    }

    response = operator_client.post(f"/admin/concerts/concert/{concert.id}/change/", form)

    assert response.status_code == 200
    text = response.content.decode()
    assert "has sales" in text
    assert_readable(text)
    assert Schedule.objects.filter(id=sold.id).exists()


def test_a_seat_that_was_sold_cannot_be_deleted(operator_client, sold):
    seat = Seat.objects.filter(schedule=sold).order_by("id").first()
    url = f"/admin/concerts/seat/{seat.id}/delete/"

    page = operator_client.get(url)
    operator_client.post(url, {"post": "yes"})

    text = page.content.decode()
    assert page.status_code == 200
    assert "is held or sold now" in text
    assert_readable(text)
    assert Seat.objects.filter(id=seat.id).exists()


def test_a_policy_in_use_cannot_be_deleted(operator_client, sold):
    policy = sold.concert.cancellation_policy

    page = operator_client.get(f"/admin/concerts/cancellationpolicy/{policy.id}/delete/")

    text = page.content.decode()
    assert page.status_code == 200
    assert "is the cancellation policy of" in text and "another cancellation policy" in text
    assert_readable(text)


def test_a_customer_with_bookings_cannot_be_deleted(operator_client, sold):
    customer = sold.reservations.first().user
    url = f"/admin/accounts/user/{customer.id}/delete/"

    page = operator_client.get(url)
    operator_client.post(url, {"post": "yes"})

    text = page.content.decode()
    assert page.status_code == 200
    assert "cannot be deleted" in text and "Deactivate the account instead" in text
    assert_readable(text)
    assert get_user_model().objects.filter(id=customer.id).exists()


def test_what_has_no_sales_is_deleted_as_before(operator_client):
    seat = SeatFactory()
    concert = seat.schedule.concert
    customer = UserFactory()

    page = operator_client.get(f"/admin/concerts/concert/{concert.id}/delete/")
    assert "Are you sure" in page.content.decode()
    operator_client.post(f"/admin/concerts/concert/{concert.id}/delete/", {"post": "yes"})
    operator_client.post(f"/admin/accounts/user/{customer.id}/delete/", {"post": "yes"})

    assert not Concert.objects.filter(id=concert.id).exists()
    assert not Seat.objects.filter(id=seat.id).exists()
    assert not get_user_model().objects.filter(id=customer.id).exists()
