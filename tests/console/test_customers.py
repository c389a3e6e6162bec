"""Finding a customer and reading everything about them on one page: queue admissions,
reservations, payments, cancellations, waitlist entries, wallet and ledger, each row linking
to its admin page; never their API token."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.authtoken.models import Token

from payments.cancellations import reservation_cancel_paid
from payments.models import LedgerEntry, Wallet
from payments.services import wallet_charge
from queueing.models import QueueAdmission
from tests.accounts.factories import UserFactory
from tests.concerts.factories import ScheduleFactory
from tests.reservations.waitlist_helpers import buy, join, seats_of

pytestmark = pytest.mark.django_db


def search(client, query: str) -> str:
    response = client.get(reverse("console-customers"), {"q": query})
    assert response.status_code == 200
    return response.content.decode()


def customer_page(client, user) -> str:
    response = client.get(reverse("console-customer", args=[user.id]))
    assert response.status_code == 200
    return response.content.decode()


def test_customers_are_found_by_email_name_or_id(operator_client):
    kim = UserFactory(email="minjun.kim@example.com", name="김민준")
    lee = UserFactory(email="seoyeon@example.com", name="이서연")
    link = reverse("console-customer", args=[kim.id])

    assert link in search(operator_client, "MINJUN")
    assert link in search(operator_client, "민준")
    assert link in search(operator_client, str(kim.id))
    page = search(operator_client, "김")
    assert reverse("console-customer", args=[lee.id]) not in page
    assert "Nobody" in search(operator_client, "nobody-like-this")
    for odd in ["²", "9" * 40, "' OR 1=1 --", "%", "_"]:
        assert kim.email not in search(operator_client, odd)


@pytest.fixture
def history():
    """A customer who bought two seats, cancelled one, waits for more of another
    performance, and whose admission to the queue is on record."""
    buyer = UserFactory(name="김민준")
    schedule = ScheduleFactory()
    seats = seats_of(schedule, "R", "A", rows=1, per_row=2, price=110_000)
    reservation = buy(schedule, *seats, buyer=buyer)
    reservation_cancel_paid(user=buyer, reservation_id=reservation.id, seat_ids=[seats[1].id])
    sold_out = ScheduleFactory()
    buy(sold_out, *seats_of(sold_out, "VIP", "A", rows=1, per_row=1, price=165_000))
    entry = join(sold_out, grades=["VIP"], user=buyer)
    return buyer, reservation, entry


def test_a_customers_page_shows_their_records_each_linking_to_admin(operator_client, history):
    buyer, reservation, entry = history
    payment = reservation.payment
    cancellation = reservation.cancellations.get()
    wallet = Wallet.objects.get(user=buyer)
    admission = QueueAdmission.objects.get(user_id=buyer.id)

    page = customer_page(operator_client, buyer)

    assert buyer.email in page and "김민준" in page
    for url in [
        reverse("admin:reservations_reservation_change", args=[reservation.id]),
        reverse("admin:payments_payment_change", args=[payment.id]),
        reverse("admin:payments_cancellation_change", args=[cancellation.id]),
        reverse("admin:reservations_waitlistentry_change", args=[entry.id]),
        reverse("admin:payments_wallet_change", args=[wallet.id]),
        reverse("admin:queueing_concertqueue_change", args=[admission.concert_id]),
        reverse("admin:accounts_user_change", args=[buyer.id]),
    ]:
        assert f'href="{url}"' in page, url
    for entry_ in LedgerEntry.objects.filter(wallet=wallet):
        assert reverse("admin:payments_ledgerentry_change", args=[entry_.id]) in page
    assert "A-1-1" in page
    assert "<del" in page and "A-1-2</del>" in page  # the cancelled seat
    assert "₩220,000" in page  # the reservation's total
    assert wallet.balance and f"₩{wallet.balance:,}" in page


def test_the_api_token_is_never_shown_only_its_start(operator_client, customer):
    token = Token.objects.create(user=customer)

    page = customer_page(operator_client, customer)

    assert token.key not in page
    assert token.key[:6] + "…" in page
    assert token.key[:7] not in page


def test_the_ledger_shows_the_newest_hundred_and_links_to_all(operator_client, customer):
    for amount in range(1_000, 1_000 + 105):
        wallet_charge(user=customer, amount=amount)
    wallet = Wallet.objects.get(user=customer)
    newest = LedgerEntry.objects.filter(wallet=wallet).order_by("-id")

    page = customer_page(operator_client, customer)

    shown = [
        e.id for e in newest if reverse("admin:payments_ledgerentry_change", args=[e.id]) in page
    ]
    assert shown == [e.id for e in newest[:100]]
    everything = (
        reverse("admin:payments_ledgerentry_changelist") + f"?wallet__id__exact={wallet.id}"
    )
    assert f'href="{everything}"' in page
    listed = operator_client.get(everything)  # the admin honours the filter
    assert listed.status_code == 200
    assert set(listed.context["cl"].queryset.values_list("wallet_id", flat=True)) == {wallet.id}


def test_the_full_admin_lists_behind_the_page_are_filtered_to_the_customer(
    operator_client, history
):
    buyer, reservation, entry = history

    for changelist in [
        "admin:reservations_reservation_changelist",
        "admin:payments_payment_changelist",
        "admin:reservations_waitlistentry_changelist",
    ]:
        response = operator_client.get(reverse(changelist) + f"?user__id__exact={buyer.id}")
        assert response.status_code == 200, changelist
        users = set(response.context["cl"].queryset.values_list("user_id", flat=True))
        assert users == {buyer.id}, changelist


def test_a_customers_page_costs_the_same_queries_however_long_their_history(operator_client):
    def page_queries(buyer) -> int:
        with CaptureQueriesContext(connection) as captured:
            customer_page(operator_client, buyer)
        return len(captured)

    costs = []
    for purchases in (1, 4):
        buyer = UserFactory()
        for _ in range(purchases):
            schedule = ScheduleFactory()
            seats = seats_of(schedule, "R", "A", rows=1, per_row=2, price=110_000)
            reservation = buy(schedule, *seats, buyer=buyer)
            reservation_cancel_paid(user=buyer, reservation_id=reservation.id)
        costs.append(page_queries(buyer))

    assert costs[0] == costs[1]


def test_a_customer_with_nothing_yet_has_a_page(operator_client, customer):
    page = customer_page(operator_client, customer)

    assert "₩0" in page
    assert "None." in page


def test_customer_pages_are_for_staff_with_the_permission(
    client, customer_web_client, staff_client, customer
):
    urls = [
        reverse("console-customers") + "?q=a",
        reverse("console-customer", args=[customer.id]),
    ]
    for url in urls:
        for visitor in (client, customer_web_client):
            response = visitor.get(url)
            assert response.status_code == 302
            assert response["Location"].startswith(reverse("admin:login"))
        assert staff_client.get(url).status_code == 403


def test_an_unknown_customer_is_not_found(operator_client):
    assert operator_client.get(reverse("console-customer", args=[999_999])).status_code == 404
