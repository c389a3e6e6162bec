"""Customer emails from the outbox: which facts mail whom, what they say, in which language."""

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone, translation

from config.money import format_won
from events.models import Event
from events.services import events_dispatch
from notifications import content
from notifications.channel import fan_out
from notifications.content import when
from notifications.models import CustomerMessage, MessageKind, MessageStatus
from notifications.services import customer_messages_send
from payments.cancellations import payment_refund, reservation_cancel_paid
from payments.errors import InsufficientBalance
from payments.models import Cancellation
from payments.services import payment_create, wallet_charge
from reservations.services import reservation_cancel, reservation_expire_due
from tests.accounts.factories import UserFactory
from tests.concerts.factories import ConcertFactory, ScheduleFactory
from tests.notifications.helpers import html_of, mails_of, relay_and_send
from tests.reservations.factories import hold_seats
from tests.reservations.waitlist_helpers import buy, join, seats_of

pytestmark = pytest.mark.django_db

VIP = 165_000


@pytest.fixture
def schedule():
    return ScheduleFactory(
        concert=ConcertFactory(title="IU HEREH World Tour", venue="KSPO DOME", booking_fee=2_000)
    )


@pytest.fixture
def rendered_languages(monkeypatch):
    """The active language whenever a message template is rendered."""
    languages = []
    real = content.render_to_string

    def render(*args, **kwargs):
        languages.append(translation.get_language())
        return real(*args, **kwargs)

    monkeypatch.setattr(content, "render_to_string", render)
    return languages


def korean_date(moment) -> str:
    """Django's own Korean date format (not our catalog): '2027년 1월 4일'."""
    local = timezone.localtime(moment)
    return f"{local.year}년 {local.month}월 {local.day}일"


@override_settings(LANGUAGE_CODE="ko")
def test_a_payment_mails_one_confirmation_in_korean_with_seats_date_and_amounts(
    schedule, mailoutbox, rendered_languages
):
    seats = seats_of(schedule, "VIP", "A", rows=1, per_row=2, price=VIP)

    reservation = buy(schedule, *seats)
    relay_and_send()

    [mail] = mailoutbox
    assert mail.to == [reservation.user.email]
    assert "IU HEREH World Tour" in mail.subject
    assert korean_date(schedule.starts_at) in mail.subject
    for body in (mail.body, html_of(mail)):
        assert "IU HEREH World Tour" in body and "KSPO DOME" in body
        assert "A-1-1" in body and "A-1-2" in body and "VIP" in body
        assert korean_date(schedule.starts_at) in body
        assert "₩165,000" in body  # each seat
        assert "₩4,000" in body  # booking fee, 2 × ₩2,000
        assert "₩334,000" in body  # paid
        assert f"/api/v1/reservations/{reservation.id}/cancellation" in body
    assert "<table" in html_of(mail) and "<table" not in mail.body
    assert set(rendered_languages) == {"ko"}
    message = CustomerMessage.objects.get()
    assert message.status == MessageStatus.SENT and message.sent_at is not None
    assert message.kind == MessageKind.BOOKING_CONFIRMED and message.subject == mail.subject
    assert mail.message()["Message-ID"] == message.message_id
    assert str(message.event.event_id) in message.message_id


def test_english_when_the_language_is_english(schedule, mailoutbox, rendered_languages):
    buy(schedule, *seats_of(schedule, "R", "B", rows=1, per_row=1, price=110_000))

    relay_and_send()

    [mail] = mailoutbox
    assert mail.subject.startswith("Booking confirmed: IU HEREH World Tour")
    assert "Your booking is confirmed and paid." in mail.body
    assert set(rendered_languages) == {"en"}


def test_a_customer_cancellation_mails_the_amounts_back(schedule, mailoutbox):
    seats = seats_of(schedule, "VIP", "A", rows=1, per_row=2, price=VIP)
    reservation = buy(schedule, *seats)
    relay_and_send()
    mailoutbox.clear()

    reservation_cancel_paid(
        user=reservation.user, reservation_id=reservation.id, seat_ids=[seats[0].id]
    )
    relay_and_send()

    [mail] = mailoutbox
    cancellation = Cancellation.objects.get()
    assert mail.subject.startswith("Booking cancelled: IU HEREH World Tour")
    for body in (mail.body, html_of(mail)):
        assert "A-1-1" in body and "A-1-2" not in body  # only the cancelled seat
        assert format_won(cancellation.refund) in body
        assert format_won(cancellation.fee) in body
        assert format_won(cancellation.amount) in body
    [item] = cancellation.items.all()
    assert f"A-1-1: price ₩165,000, fee {format_won(item.fee)}, back {format_won(item.refund)}" in (
        mail.body
    )
    assert "the rest of your booking stands" in mail.body


def test_an_operator_refund_mails_the_amounts_and_the_fee_kept(schedule, mailoutbox, operator):
    reservation = buy(schedule, *seats_of(schedule, "VIP", "A", rows=1, per_row=1, price=VIP))
    relay_and_send()
    mailoutbox.clear()

    payment_refund(
        payment_id=reservation.payment.id, operator=operator, in_full=False, reason="Ill."
    )
    relay_and_send()

    [mail] = mailoutbox
    cancellation = Cancellation.objects.get()
    assert mail.subject.startswith("Booking refunded: IU HEREH World Tour")
    assert "Your booking was cancelled and refunded by the organiser." in mail.body
    assert f"Back to your wallet: {format_won(cancellation.amount)}" in mail.body
    if cancellation.booking_fee_kept:
        assert f"Booking fee kept: {format_won(cancellation.booking_fee_kept)}" in mail.body


def test_a_waitlist_offer_mails_the_seats_the_amount_and_the_deadline(schedule, mailoutbox):
    seat = seats_of(schedule, "R", "C", rows=1, per_row=1, price=110_000)[0]
    sold = buy(schedule, seat)
    waiting = UserFactory()
    entry = join(schedule, user=waiting)
    relay_and_send()
    mailoutbox.clear()

    reservation_cancel_paid(user=sold.user, reservation_id=sold.id)
    relay_and_send()

    entry.refresh_from_db()
    [offer_mail] = mails_of(mailoutbox, to=waiting.email)
    assert len(mailoutbox) == 2  # and the cancellation to the seller
    assert offer_mail.subject.startswith("Seats for you from the waitlist: IU HEREH World Tour")
    with translation.override("en"):
        deadline = when(entry.offer.expires_at)
    for body in (offer_mail.body, html_of(offer_mail)):
        assert "C-1-1" in body
        assert "₩112,000" in body  # the seat and its booking fee
        assert f"Pay by {deadline}" in body
        assert f"/api/v1/reservations/{entry.offer_id}/payment" in body


def test_an_expired_hold_mails_its_customer_and_a_hold_let_go_does_not(schedule, mailoutbox):
    seats = seats_of(schedule, "R", "D", rows=1, per_row=2, price=110_000)
    lapsing, let_go = UserFactory(), UserFactory()
    lapsed = hold_seats(lapsing, schedule, seats[0])
    cancelled = hold_seats(let_go, schedule, seats[1])

    reservation_cancel(user=let_go, reservation_id=cancelled.id)
    reservation_expire_due(now=lapsed.expires_at + timedelta(seconds=1))
    relay_and_send()

    [mail] = mailoutbox
    assert mail.to == [lapsing.email]
    assert mail.subject.startswith("Your hold has ended: IU HEREH World Tour")
    assert "went back on sale" in mail.body


def test_a_payment_that_rolls_back_mails_nothing(schedule, mailoutbox, monkeypatch):
    seats = seats_of(schedule, "R", "E", rows=1, per_row=2, price=110_000)
    broke, unlucky = UserFactory(), UserFactory()
    unpaid = hold_seats(broke, schedule, seats[0])
    with pytest.raises(InsufficientBalance):
        payment_create(user=broke, reservation_id=unpaid.id)
    # A failure after the payment recorded its event: the event rolls back with it.
    wallet_charge(user=unlucky, amount=500_000)
    held = hold_seats(unlucky, schedule, seats[1])

    def fail(**_kwargs):
        raise RuntimeError("the queue bookkeeping failed")

    monkeypatch.setattr("payments.services.queue_admission_end", fail)
    with pytest.raises(RuntimeError):
        payment_create(user=unlucky, reservation_id=held.id)
    relay_and_send()

    assert not Event.objects.filter(type="payment.confirmed").exists()
    assert not CustomerMessage.objects.exists()
    assert mailoutbox == []


def test_a_second_fan_out_or_send_of_the_same_event_adds_nothing(schedule, mailoutbox):
    buy(schedule, *seats_of(schedule, "R", "F", rows=1, per_row=1, price=110_000))
    relay_and_send()
    event = Event.objects.get(type="payment.confirmed")

    fan_out(event)  # a relay that died before its commit, retried
    events_dispatch()
    assert customer_messages_send() == 0
    assert customer_messages_send(now=timezone.now() + timedelta(days=1)) == 0

    assert CustomerMessage.objects.count() == 1
    assert len(mailoutbox) == 1
