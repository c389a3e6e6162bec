"""Who among the staff may do what (accounts/operator_groups.py, docs/operators.md): sales
staff read everything and release holds; finance reads everything and refunds. An action a
group may not run is neither offered nor run when its POST is crafted by hand."""

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.test import RequestFactory

from accounts.operator_groups import FINANCE, SALES_STAFF, operator_groups_sync
from concerts.models import Seat, SeatStatus
from payments.models import PaymentStatus, RefundJob, Wallet
from reservations.models import ReservationStatus
from tests.concerts.factories import ScheduleFactory
from tests.reservations.waitlist_helpers import buy, hold, seats_of

pytestmark = pytest.mark.django_db

LISTS = [
    "/admin/",
    "/admin/concerts/concert/",
    "/admin/concerts/schedule/",
    "/admin/concerts/seat/",
    "/admin/queueing/concertqueue/",
    "/admin/reservations/reservation/",
    "/admin/reservations/waitlistentry/",
    "/admin/payments/payment/",
    "/admin/payments/wallet/",
    "/admin/payments/ledgerentry/",
    "/admin/payments/cancellation/",
    "/admin/payments/refundjob/",
    "/admin/accounts/user/",
    "/admin/accounts/apitoken/",
]


@pytest.fixture
def sale():
    """A performance with a paid booking and a live hold."""
    schedule = ScheduleFactory()
    seats = seats_of(schedule, "R", "A", rows=1, per_row=2, price=120_000)
    paid = buy(schedule, seats[0])
    held = hold(schedule, seats[1])
    return schedule, paid, held


def offered_actions(client, path) -> str:
    return client.get(path).content.decode()


def refund_post(client, payment):
    return client.post(
        "/admin/payments/payment/",
        {
            "action": "refund",
            "_selected_action": [payment.id],
            "confirmed": "yes",
            "mode": "full",
            "reason": "Crafted by hand.",
        },
    )


def release_post(client, reservation):
    return client.post(
        "/admin/reservations/reservation/",
        {
            "action": "release_holds",
            "_selected_action": [reservation.id],
            "confirmed": "yes",
            "reason": "Crafted by hand.",
        },
    )


def test_the_migration_made_both_groups_with_their_permissions():
    operator_groups_sync()  # idempotent: what the migration did, again

    permissions = {
        group.name: {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.all()}
        for group in Group.objects.filter(name__in=[SALES_STAFF, FINANCE])
    }

    assert "reservations.release_hold" in permissions[SALES_STAFF]
    assert "payments.refund_payment" not in permissions[SALES_STAFF]
    assert "payments.refund_payment" in permissions[FINANCE]
    assert "reservations.release_hold" not in permissions[FINANCE]
    for granted in permissions.values():
        assert "payments.view_payment" in granted and "reservations.view_reservation" in granted
        assert not any(p.split(".")[1].startswith(("change_", "delete_", "add_")) for p in granted)


@pytest.mark.parametrize("group", [SALES_STAFF, FINANCE])
@pytest.mark.parametrize("path", LISTS)
def test_both_groups_see_every_list(staff_client, sale, group, path):
    client, _ = staff_client(group)

    assert client.get(path).status_code == 200


@pytest.mark.parametrize("group", [SALES_STAFF, FINANCE])
def test_both_groups_open_the_pages_of_a_booking(staff_client, sale, group):
    client, _ = staff_client(group)
    _, paid, _ = sale

    assert client.get(f"/admin/reservations/reservation/{paid.id}/change/").status_code == 200
    assert client.get(f"/admin/payments/payment/{paid.payment.id}/change/").status_code == 200


def test_sales_staff_cannot_refund(staff_client, sale):
    client, _ = staff_client(SALES_STAFF)
    schedule, paid, _ = sale
    balance = Wallet.objects.get(user=paid.user).balance

    assert 'value="refund"' not in offered_actions(client, "/admin/payments/payment/")
    assert 'value="refund_performance"' not in offered_actions(client, "/admin/concerts/schedule/")
    refund_post(client, paid.payment)
    client.post(
        "/admin/concerts/schedule/",
        {
            "action": "refund_performance",
            "_selected_action": [schedule.id],
            "confirmed": "yes",
            "mode": "full",
            "reason": "Crafted by hand.",
        },
    )

    paid.payment.refresh_from_db()
    assert paid.payment.status == PaymentStatus.COMPLETED
    assert Wallet.objects.get(user=paid.user).balance == balance
    assert not RefundJob.objects.exists()


def test_sales_staff_release_holds(staff_client, sale):
    client, user = staff_client(SALES_STAFF)
    _, _, held = sale

    assert 'value="release_holds"' in offered_actions(client, "/admin/reservations/reservation/")
    assert release_post(client, held).status_code == 302

    held.refresh_from_db()
    assert held.status == ReservationStatus.CANCELLED
    assert LogEntry.objects.filter(user=user, object_id=str(held.id)).exists()


def test_finance_refunds(staff_client, sale):
    client, user = staff_client(FINANCE)
    _, paid, _ = sale

    assert 'value="refund"' in offered_actions(client, "/admin/payments/payment/")
    assert 'value="refund_performance"' in offered_actions(client, "/admin/concerts/schedule/")
    assert refund_post(client, paid.payment).status_code == 302

    paid.payment.refresh_from_db()
    assert (paid.payment.status, paid.payment.refunded_by) == (PaymentStatus.REFUNDED, user)


def test_finance_cannot_release_holds(staff_client, sale):
    client, _ = staff_client(FINANCE)
    _, _, held = sale

    assert 'value="release_holds"' not in offered_actions(
        client, "/admin/reservations/reservation/"
    )
    release_post(client, held)

    held.refresh_from_db()
    assert held.status == ReservationStatus.HELD
    assert Seat.objects.get(reservation=held).status == SeatStatus.HELD


@pytest.mark.parametrize("group", [SALES_STAFF, FINANCE])
def test_neither_group_changes_the_catalog(staff_client, sale, group):
    client, _ = staff_client(group)
    schedule, _, _ = sale

    listing = offered_actions(client, "/admin/concerts/concert/")
    assert 'value="unpublish"' not in listing and 'value="delete_selected"' not in listing
    assert 'value="pause"' not in offered_actions(client, "/admin/queueing/concertqueue/")
    assert client.get(f"/admin/concerts/schedule/{schedule.id}/generate-seats/").status_code == 403
    assert client.get(f"/admin/concerts/concert/{schedule.concert_id}/delete/").status_code == 403


def test_the_confirmation_views_check_the_permission_themselves(staff_client, sale):
    """Even called past the action list (a future screen, a bug), the action refuses."""
    from django.contrib import admin

    from payments.models import Payment
    from reservations.models import Reservation

    _, sales_user = staff_client(SALES_STAFF)
    _, finance_user = staff_client(FINANCE)
    _, paid, held = sale
    request = RequestFactory().post("/admin/", {"confirmed": "yes", "reason": "x", "mode": "full"})

    request.user = sales_user
    with pytest.raises(PermissionDenied):
        admin.site.get_model_admin(Payment).refund(
            request, Payment.objects.filter(id=paid.payment.id)
        )
    request.user = finance_user
    with pytest.raises(PermissionDenied):
        admin.site.get_model_admin(Reservation).release_holds(
            request, Reservation.objects.filter(id=held.id)
        )
    paid.payment.refresh_from_db()
    held.refresh_from_db()
    assert (paid.payment.status, held.status) == (PaymentStatus.COMPLETED, "held")
