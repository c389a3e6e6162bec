from datetime import timedelta

import pytest
from django.utils import timezone

from queueing.selectors import queue_stats
from queueing.services import queue_enter
from queueing.tasks import admit_waiting_customers
from tests.concerts.factories import ScheduleFactory

pytestmark = pytest.mark.django_db


def test_the_beat_task_admits_for_every_concert_on_sale_and_no_other():
    now = timezone.now()
    on_sale = ScheduleFactory().concert
    not_yet = ScheduleFactory(concert__sale_opens_at=now + timedelta(hours=1)).concert
    hidden = ScheduleFactory(concert__is_published=False).concert
    over = ScheduleFactory(
        starts_at=now - timedelta(days=2), ends_at=now - timedelta(days=2, hours=-2)
    ).concert
    for concert in (on_sale, not_yet, hidden, over):
        queue_enter(concert_id=concert.id, user_id=1, now=now) if concert.is_published else None

    admitted = admit_waiting_customers.apply().get()

    stats = queue_stats(concert_ids=[on_sale.id, not_yet.id, over.id])
    assert admitted == 1
    assert (stats[on_sale.id].admitted, stats[not_yet.id].admitted, stats[over.id].admitted) == (
        1,
        0,
        0,
    )
