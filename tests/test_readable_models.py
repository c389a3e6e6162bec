"""Operators read every object by a name, and every database rule by a sentence.

Admin shows `str(obj)` in lists, titles, breadcrumbs, delete pages and the history, so no
model may fall back to Django's "ReservationSeat object (5)". And a form that breaks a
CHECK or UNIQUE constraint shows the constraint's `violation_error_message`, so every one
of them has its own sentence instead of 'Constraint "seat_price_positive" is violated'.
"""

import copy
import re
import uuid
from datetime import timedelta

import pytest
from django.apps import apps
from django.core.exceptions import ValidationError
from django.db import models
from rest_framework.authtoken.models import Token

from accounts.models import ApiToken, IdempotencyRecord
from payments.cancellations import payment_refund
from payments.models import RefundJob
from reservations.models import ReservationSeat
from tests.concerts.factories import ScheduleFactory
from tests.reservations.waitlist_helpers import buy, hold, join, seats_of

pytestmark = pytest.mark.django_db

OUR_APPS = ("accounts", "concerts", "queueing", "reservations", "payments")


def our_models():
    return [model for app in OUR_APPS for model in apps.get_app_config(app).get_models()]


@pytest.fixture
def a_sale_of_everything(operator):
    """One of each kind of row: a refunded booking whose seat went to a waitlist offer, a
    hold, a paid booking, queue admissions, a refund job, an Idempotency-Key, a token."""
    schedule = ScheduleFactory()
    seats = seats_of(schedule, "VIP", "A", rows=1, per_row=3, price=165_000)
    refunded = buy(schedule, seats[0])
    buy(schedule, seats[2])
    hold(schedule, seats[1])
    join(schedule, quantity=1)
    payment_refund(payment_id=refunded.payment.id, operator=operator, in_full=True, reason="Moved.")
    RefundJob.objects.create(
        schedule=schedule, kind="operator_full", reason="Ill.", created_by=operator, total=1
    )
    IdempotencyRecord.objects.create(user=operator, key=str(uuid.uuid4()), fingerprint="f")
    Token.objects.create(user=operator)
    return schedule


def test_every_model_names_its_objects():
    nameless = [model.__name__ for model in our_models() if model.__str__ is models.Model.__str__]

    assert nameless == []


def test_every_object_reads_as_a_name_not_an_id(a_sale_of_everything):
    shown = {}
    for model in our_models():
        rows = list(model.objects.all()[:20])
        assert rows, f"the scenario makes no {model.__name__}"
        shown[model.__name__] = [str(row) for row in rows]

    unreadable = {
        name: texts
        for name, texts in shown.items()
        if any(not text or re.search(r"object \(\d+\)", text) for text in texts)
    }
    assert unreadable == {}
    assert "A-1-1 (₩165,000, cancelled)" in shown["ReservationSeat"]
    assert "A-1-2 (₩165,000)" in shown["ReservationSeat"]
    assert any(text.startswith("Refund (tickets) +₩165,000") for text in shown["LedgerEntry"])
    assert any(text.endswith("₩167,000 back") for text in shown["Cancellation"])
    assert "A-1-1: ₩167,000 back" in shown["CancellationItem"]


def test_a_token_shows_only_the_start_of_its_key(customer):
    token = Token.objects.create(user=customer)

    shown = str(ApiToken.objects.get(user=customer))

    assert shown == f"Token {token.key[:6]}…"
    assert token.key not in shown


# --- Every constraint has a sentence ----------------------------------------------------------


def all_constraints():
    return [(model, constraint) for model in our_models() for constraint in model._meta.constraints]


def test_every_constraint_has_its_own_sentence_and_code():
    default = models.CheckConstraint.default_violation_error_message
    bare = [
        constraint.name
        for _, constraint in all_constraints()
        if constraint.violation_error_message == default or not constraint.violation_error_code
    ]

    assert bare == []


def _break(field: str, value):
    def mutate(row):
        setattr(row, field, value)
        return row

    return mutate


def _twice(row):
    """An unsaved copy of a saved row: it collides with it on every unique constraint."""
    twin = copy.copy(row)
    twin.pk = None
    twin._state = copy.copy(row._state)
    twin._state.adding = True
    return twin


def _held_without_expiry(seat):
    seat.status, seat.hold_expires_at = "held", None
    return seat


def _ended_but_live(entry):
    entry.status, entry.live = "bought", True
    return entry


def _add_one(field: str):
    def mutate(row):
        setattr(row, field, getattr(row, field) + 1)
        return row

    return mutate


BREAKS = {
    **{
        f"concert_{name}_positive": _break(name, 0)
        for name in (
            "queue_max_active",
            "queue_admit_per_minute",
            "queue_admitted_minutes",
            "queue_abandon_after_seconds",
            "queue_claim_seconds",
            "queue_shopping_seconds",
            "hold_minutes",
            "ticket_limit",
            "offer_minutes",
        )
    },
    "schedule_ends_after_start": lambda s: _break("ends_at", s.starts_at - timedelta(hours=1))(s),
    "seat_unique_per_schedule": _twice,
    "seat_price_positive": _break("price", 0),
    "seat_row_and_number_positive": _break("row", 0),
    "seat_status_valid": _break("status", "lost"),
    "seat_hold_expiry_iff_held": _held_without_expiry,
    "seat_reservation_iff_taken": _break("reservation_id", None),
    "cancellation_tier_range_ordered": lambda t: _break("max_days_before", t.min_days_before - 1)(
        t
    ),
    "cancellation_tier_percent_at_most_100": _break("percent", 150),
    "reservation_status_valid": _break("status", "lost"),
    "reservation_total_positive": _break("total_price", 0),
    "reservation_source_valid": _break("source", "street"),
    "reservation_seat_once": _twice,
    "waitlist_one_live_entry": _twice,
    "waitlist_quantity_1_to_4": _break("quantity", 5),
    "waitlist_status_valid": _break("status", "lost"),
    "waitlist_live_iff_waiting_or_offered": _ended_but_live,
    "wallet_never_negative": _break("balance", -1),
    "ledger_amount_sign_matches_kind": _break("amount", -5),
    "ledger_balance_after_not_negative": _break("balance_after", -1),
    "payment_amount_positive": _break("amount", 0),
    "payment_refund_at_most_paid": lambda p: _break("refunded_amount", p.amount + 1)(p),
    "cancellation_amount_adds_up": _add_one("amount"),
    "cancellation_item_adds_up": _add_one("refund"),
    "idempotency_key_once_per_user": _twice,
    "queue_admission_once_per_entry": _twice,
}


def test_every_constraint_is_tried_below():
    assert sorted(constraint.name for _, constraint in all_constraints()) == sorted(BREAKS)


# Which row of the scenario each model's constraints are tried on (a held seat for the
# seat rules, a live waitlist entry, a charge for the ledger).
ROW_OF = {
    "Seat": lambda rows: rows.filter(status="held"),
    "WaitlistEntry": lambda rows: rows.filter(live=True),
    "LedgerEntry": lambda rows: rows.filter(kind="charge"),
}


@pytest.mark.parametrize(
    "model, constraint",
    all_constraints(),
    ids=[constraint.name for _, constraint in all_constraints()],
)
def test_a_broken_constraint_reads_as_its_sentence(a_sale_of_everything, model, constraint):
    rows = ROW_OF.get(model.__name__, lambda rows: rows)(model.objects.order_by("pk"))
    row = BREAKS[constraint.name](rows.first())

    with pytest.raises(ValidationError) as raised:
        row.validate_constraints()

    messages = raised.value.messages
    assert str(constraint.get_violation_error_message()) in messages
    assert not any("is violated" in message for message in messages)


def test_a_reservation_seat_reads_as_seat_and_price():
    item = ReservationSeat(price=165_000)
    item.seat = seats_of(ScheduleFactory(), "VIP", "A", rows=1, per_row=3, price=165_000)[2]

    assert str(item) == "A-1-3 (₩165,000)"


def test_every_admin_page_of_every_object_opens_and_reads(operator_client, a_sale_of_everything):
    from django.contrib import admin
    from django.contrib.admin.utils import quote

    opened = 0
    for model, model_admin in admin.site._registry.items():
        changelist = operator_client.get(
            f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        )
        assert changelist.status_code == 200, model
        for row in model_admin.get_queryset(changelist.wsgi_request)[:3]:
            page = operator_client.get(
                f"/admin/{model._meta.app_label}/{model._meta.model_name}/{quote(row.pk)}/change/"
            )
            assert page.status_code == 200, (model, row.pk)
            text = page.content.decode()
            assert not re.search(r"\w object \(\d+\)", text), (model, row.pk)
            opened += 1

    assert opened > 20
