import pytest

from concerts.models import Concert
from queueing.services import queue_admit_tick, queue_enter
from tests.concerts.factories import ConcertFactory

pytestmark = pytest.mark.django_db


def test_queue_panel_shows_live_numbers(operator_client, django_assert_max_num_queries):
    concert = ConcertFactory(title="Big Night", queue_max_active=2, queue_admit_per_minute=6000)
    for user_id in range(1, 6):
        queue_enter(concert_id=concert.id, user_id=user_id)
    queue_admit_tick(concert=concert)
    ConcertFactory.create_batch(5)

    with django_assert_max_num_queries(8):  # a fixed number, however many concerts
        changelist = operator_client.get("/admin/queueing/concertqueue/")
    page = operator_client.get(f"/admin/queueing/concertqueue/{concert.id}/change/")

    assert changelist.status_code == 200 and page.status_code == 200
    text = changelist.content.decode()
    assert "Big Night" in text
    assert '<td class="field-waiting">3</td>' in text
    assert '<td class="field-admitted">2</td>' in text
    assert "admitting" in page.content.decode()


def test_queue_panel_shows_how_long_shoppers_took_for_the_next_sale(operator_client):
    from datetime import timedelta

    from django.utils import timezone

    from queueing.services import queue_leave
    from queueing.tokens import token_verify

    concert = ConcertFactory(queue_max_active=2, queue_admit_per_minute=6000)
    start = timezone.now()
    tokens = {
        user_id: queue_enter(concert_id=concert.id, user_id=user_id, now=start).token
        for user_id in (1, 2)
    }
    queue_admit_tick(concert=concert, now=start)
    url = f"/admin/queueing/concertqueue/{concert.id}/change/"
    assert "no admitted session has ended yet" in operator_client.get(url).content.decode()

    for user_id, seconds in ((1, 40), (2, 80)):
        token = token_verify(tokens[user_id], user_id=user_id)
        queue_leave(token=token, user_id=user_id, now=start + timedelta(seconds=seconds))

    page = operator_client.get(url).content.decode()
    assert "60 s on average, over 2 ended sessions" in page


def test_operators_pause_and_resume_admission(operator_client):
    concert = ConcertFactory()

    operator_client.post(
        "/admin/queueing/concertqueue/", {"action": "pause", "_selected_action": [concert.id]}
    )
    assert Concert.objects.get(id=concert.id).queue_paused
    queue_enter(concert_id=concert.id, user_id=1)
    assert queue_admit_tick(concert=Concert.objects.get(id=concert.id)).admitted == 0

    operator_client.post(
        "/admin/queueing/concertqueue/", {"action": "resume", "_selected_action": [concert.id]}
    )
    assert queue_admit_tick(concert=Concert.objects.get(id=concert.id)).admitted == 1


def test_operators_change_admission_settings(operator_client):
    concert = ConcertFactory()

    response = operator_client.post(
        f"/admin/queueing/concertqueue/{concert.id}/change/",
        {
            "queue_max_active": "500",
            "queue_admit_per_minute": "1200",
            "queue_admitted_minutes": "8",
            "queue_claim_seconds": "30",
            "queue_abandon_after_seconds": "120",
        },
    )

    assert response.status_code == 302
    concert.refresh_from_db()
    assert (concert.queue_max_active, concert.queue_admitted_minutes) == (500, 8)
    assert not concert.queue_paused


def test_admission_settings_must_be_positive(operator_client):
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

    assert response.status_code == 200  # the form again, with the error
    concert.refresh_from_db()
    assert concert.queue_max_active == 100


def test_the_queue_page_lists_who_waits_and_who_is_admitted(
    operator_client, django_assert_max_num_queries
):
    from django.utils import timezone

    from queueing.selectors import queue_peek
    from tests.accounts.factories import UserFactory

    concert = ConcertFactory(queue_max_active=2, queue_admit_per_minute=6000)
    customers = [UserFactory(email=f"fan{n}@example.com") for n in range(5)]
    for customer in customers:
        queue_enter(concert_id=concert.id, user_id=customer.id)
    queue_admit_tick(concert=concert)  # the first two are let in

    with django_assert_max_num_queries(1):  # the emails; the rest is one Redis script
        peek = queue_peek(concert_id=concert.id, limit=2)
    page = operator_client.get(f"/admin/queueing/concertqueue/{concert.id}/change/")

    assert (peek.waiting, peek.admitted) == (3, 2)
    assert [(c.position, c.email) for c in peek.first_waiting] == [
        (1, "fan2@example.com"),
        (2, "fan3@example.com"),
    ]
    assert {c.email for c in peek.first_admitted} == {"fan0@example.com", "fan1@example.com"}
    assert all(c.until > timezone.now() for c in peek.first_admitted)
    assert all(abs((c.since - timezone.now()).total_seconds()) < 60 for c in peek.first_waiting)
    text = page.content.decode()
    rows = [f"<td>{n}</td><td>fan{n + 1}@example.com</td>" for n in (1, 2, 3)]
    assert all(row in text for row in rows), text
    assert "fan0@example.com" in text and "fan1@example.com" in text


def test_before_opening_the_queue_page_shows_the_line_without_arrival_times(operator_client):
    from datetime import timedelta

    from django.utils import timezone

    from queueing.selectors import queue_peek
    from tests.accounts.factories import UserFactory

    concert = ConcertFactory(sale_opens_at=timezone.now() + timedelta(hours=1))
    customer = UserFactory()
    queue_enter(concert_id=concert.id, user_id=customer.id)

    peek = queue_peek(concert_id=concert.id)
    page = operator_client.get(f"/admin/queueing/concertqueue/{concert.id}/change/")

    assert [(c.email, c.since) for c in peek.first_waiting] == [(customer.email, None)]
    assert "before opening" in page.content.decode()
