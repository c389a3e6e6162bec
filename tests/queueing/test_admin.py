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
            "queue_abandon_after_seconds": "120",
        },
    )

    assert response.status_code == 200  # the form again, with the error
    concert.refresh_from_db()
    assert concert.queue_max_active == 100
