import pytest
from django.contrib.admin.models import LogEntry

from concerts.models import Seat, SeatStatus
from payments.models import LedgerKind, PaymentStatus, Wallet
from payments.services import payment_create, wallet_charge
from reservations.models import ReservationStatus
from tests.reservations.factories import held_reservation

pytestmark = pytest.mark.django_db


@pytest.fixture
def payment(customer):
    wallet_charge(user=customer, amount=300_000)
    reservation = held_reservation(user=customer, seat_prices=(120_000,))
    return payment_create(user=customer, reservation_id=reservation.id)


def refund(client, payment, *, mode="full", reason="The show is cancelled.", confirmed=True):
    form = {"action": "refund", "_selected_action": [payment.id]}
    if confirmed:
        form |= {"confirmed": "yes", "mode": mode, "reason": reason}
    return client.post("/admin/payments/payment/", form)


def test_the_refund_action_asks_first_and_moves_no_money(operator_client, payment):
    page = refund(operator_client, payment, confirmed=False)

    assert page.status_code == 200
    assert "No money moves until you confirm" in page.content.decode()
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.COMPLETED
    assert Wallet.objects.get(user=payment.user).balance == 180_000


def test_a_refund_needs_a_reason(operator_client, payment):
    page = refund(operator_client, payment, reason="")

    assert page.status_code == 200
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.COMPLETED


def test_an_operator_refunds_a_payment_with_an_audit_trail(operator, operator_client, payment):
    response = refund(operator_client, payment)

    assert response.status_code == 302
    payment.refresh_from_db()
    assert (payment.status, payment.refunded_by) == (PaymentStatus.REFUNDED, operator)
    assert payment.reservation.status == ReservationStatus.REFUNDED
    seat = Seat.objects.get(id=payment.reservation.items.get().seat_id)
    assert (seat.status, seat.reservation_id) == (SeatStatus.AVAILABLE, None)
    wallet = Wallet.objects.get(user=payment.user)
    assert wallet.balance == 300_000
    line = wallet.entries.get(kind=LedgerKind.REFUND)
    assert (line.amount, line.created_by) == (120_000, operator)
    assert LogEntry.objects.filter(user=operator, object_id=str(payment.id)).exists()
    cancellation = payment.cancellations.get()
    assert (cancellation.kind, cancellation.reason, cancellation.created_by) == (
        "operator_full",
        "The show is cancelled.",
        operator,
    )


def test_refunding_twice_moves_money_once(operator_client, payment):
    for _ in range(2):
        refund(operator_client, payment)

    assert Wallet.objects.get(user=payment.user).balance == 300_000


@pytest.mark.parametrize(
    "path",
    [
        "/admin/payments/payment/",
        "/admin/payments/wallet/",
        "/admin/payments/ledgerentry/",
        "/admin/reservations/reservation/",
    ],
)
def test_money_screens_render_read_only(operator_client, payment, path):
    listing = operator_client.get(path)
    assert listing.status_code == 200
    assert "₩" in listing.content.decode() or path.endswith("reservation/")

    assert (
        operator_client.get(
            f"/admin/reservations/reservation/{payment.reservation_id}/change/"
        ).status_code
        == 200
    )
    wallet = Wallet.objects.get(user=payment.user)
    wallet_page = operator_client.get(f"/admin/payments/wallet/{wallet.id}/change/")
    assert wallet_page.status_code == 200
    assert "₩180,000" in wallet_page.content.decode()
    assert operator_client.get("/admin/payments/wallet/add/").status_code == 403


def test_a_refunded_seat_shows_as_available_in_the_seat_map_at_once(
    customer, admit, operator, payment, django_capture_on_commit_callbacks
):
    from payments.cancellations import payment_refund

    schedule = payment.reservation.schedule
    client = admit(schedule.concert)
    path = f"/api/v1/schedules/{schedule.id}/seats"
    assert client.get(path).json()["available_seats"] == 0  # sold, and now cached

    with django_capture_on_commit_callbacks(execute=True):
        payment_refund(payment_id=payment.id, operator=operator, in_full=True, reason="Moved.")

    assert client.get(path).json()["available_seats"] == 1


def test_the_refund_page_shows_what_moves_to_whom(operator_client, payment):
    page = refund(operator_client, payment, confirmed=False).content.decode()
    text = page.replace("<wbr>", "")

    seat = payment.reservation.items.select_related("seat").get().seat
    assert payment.user.email in text
    assert f"{seat} (₩120,000)" in text  # the seats still paid
    # Paid today, a month before the show: the policy keeps nothing, so both ways give the
    # whole price back. The seat's price, paid, by the policy, in full, and the totals of
    # the last three: seven amounts.
    assert text.count("₩120,000") == 7
    assert "1 customer" in text and "1 seat" in text


def test_a_refund_is_in_the_history_of_the_payment_and_the_booking(
    operator, operator_client, payment
):
    refund(operator_client, payment, reason="Double booking.")

    for obj in (payment, payment.reservation):
        entry = LogEntry.objects.get(
            object_id=str(obj.id), content_type__model=obj._meta.model_name
        )
        assert entry.user == operator
        assert "Double booking." in entry.change_message
        assert "₩120,000" in entry.change_message


def test_a_refund_job_writes_the_history_of_each_payment_it_refunds(operator, payment):
    from payments.cancellations import refund_job_create, refund_job_run

    job = refund_job_create(
        schedule_id=payment.reservation.schedule_id,
        in_full=True,
        reason="The artist is ill.",
        operator=operator,
    )
    refund_job_run(job_id=job.id)

    entry = LogEntry.objects.get(object_id=str(payment.id), content_type__model="payment")
    assert entry.user == operator
    assert f"Refund job {job.id}" in entry.change_message
    assert "The artist is ill." in entry.change_message


def test_the_performance_refund_page_shows_bookings_customers_seats_and_money(
    operator_client, payment
):
    schedule = payment.reservation.schedule

    page = operator_client.post(
        "/admin/concerts/schedule/",
        {"action": "refund_performance", "_selected_action": [schedule.id]},
    )

    text = page.content.decode().replace("<wbr>", "")
    assert page.status_code == 200
    assert payment.user.email in text
    assert "Per performance" in text and "The bookings" in text
    assert "₩120,000" in text
    assert "No money moves until you confirm" in text
