"""The CSV exports: UTF-8 with a BOM so Excel reads Korean, the right columns and rows,
streamed, staff only, and a friendly answer to a wrong date range."""

import csv
import io
from datetime import UTC, datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from payments.cancellations import payment_refund, reservation_cancel_paid
from payments.models import LedgerEntry
from payments.services import wallet_charge
from tests.accounts.factories import UserFactory
from tests.concerts.factories import ScheduleFactory
from tests.reservations.waitlist_helpers import buy, hold, seats_of

pytestmark = pytest.mark.django_db

R, VIP, FEE = 110_000, 165_000, 2_000


def download(client, url, params=None) -> list[list[str]]:
    """The file's rows, after checking it is a UTF-8 CSV that starts with a BOM."""
    response = client.get(url, params or {})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith("attachment; filename=")
    body = b"".join(response.streaming_content)
    assert body.startswith(b"\xef\xbb\xbf")  # the BOM, encoded
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


def local(moment) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S")


@pytest.fixture
def sale(operator):
    """Two buyers with Korean names: one keeps both seats (VIP and R), the other cancels
    one of two R seats; a third is refunded by an operator."""
    schedule = ScheduleFactory()
    vip = seats_of(schedule, "VIP", "A", rows=1, per_row=2, price=VIP)
    r = seats_of(schedule, "R", "B", rows=1, per_row=4, price=R)
    kim, lee, park = (
        UserFactory(name="김민준"),
        UserFactory(name="이서연"),
        UserFactory(name='=HYPERLINK("http://evil")'),
    )
    first = buy(schedule, vip[0], r[0], buyer=kim)
    second = buy(schedule, r[1], r[2], buyer=lee)
    reservation_cancel_paid(user=lee, reservation_id=second.id, seat_ids=[r[2].id])
    third = buy(schedule, vip[1], buyer=park)
    payment_refund(
        payment_id=third.payment.id, operator=operator, in_full=True, reason="Seat broken."
    )
    return schedule, first, second, third


def test_buyers_one_line_per_ticket_with_korean_names(operator_client, sale):
    schedule, first, second, third = sale

    rows = download(operator_client, reverse("console-export-buyers", args=[schedule.id]))

    assert rows[0] == [
        "reservation id",
        "customer email",
        "customer name",
        "seat",
        "grade",
        "price (won)",
        "booking fee (won)",
        "paid at (Asia/Seoul)",
        "status",
        "cancelled at (Asia/Seoul)",
    ]
    first_paid, second_paid = local(first.payment.created_at), local(second.payment.created_at)
    kim, lee = first.user, second.user
    assert rows[1:5] == [
        [
            str(first.id),
            kim.email,
            "김민준",
            "A-1-1",
            "VIP",
            str(VIP),
            str(FEE),
            first_paid,
            "confirmed",
            "",
        ],
        [
            str(first.id),
            kim.email,
            "김민준",
            "B-1-1",
            "R",
            str(R),
            str(FEE),
            first_paid,
            "confirmed",
            "",
        ],
        [
            str(second.id),
            lee.email,
            "이서연",
            "B-1-2",
            "R",
            str(R),
            str(FEE),
            second_paid,
            "confirmed",
            "",
        ],
        [
            str(second.id),
            lee.email,
            "이서연",
            "B-1-3",
            "R",
            str(R),
            str(FEE),
            second_paid,
            "cancelled",
            rows[4][9],
        ],
    ]
    assert rows[4][9] != ""
    refunded = rows[5]
    assert (refunded[0], refunded[3], refunded[8]) == (str(third.id), "A-1-2", "refunded")
    # A name that Excel would run as a formula is written as text.
    assert refunded[2] == '\'=HYPERLINK("http://evil")'
    assert len(rows) == 6


def test_buyers_leave_out_holds_never_paid(operator_client):
    schedule = ScheduleFactory()
    seats = seats_of(schedule, "R", "A", rows=1, per_row=2, price=R)
    hold(schedule, seats[0])

    rows = download(operator_client, reverse("console-export-buyers", args=[schedule.id]))

    assert len(rows) == 1  # the header alone


def test_payments_of_a_performance(operator_client, sale):
    schedule, first, second, third = sale
    ScheduleFactory()  # another performance's payments stay out

    rows = download(operator_client, reverse("console-export-payments", args=[schedule.id]))

    assert rows[0] == [
        "payment id",
        "reservation id",
        "customer email",
        "customer name",
        "amount (won)",
        "of which booking fees (won)",
        "refunded (won)",
        "status",
        "created at (Asia/Seoul)",
        "refunded at (Asia/Seoul)",
    ]
    by_reservation = {row[1]: row for row in rows[1:]}
    assert len(rows) == 4
    kim = by_reservation[str(first.id)]
    assert kim[2:8] == [
        first.user.email,
        "김민준",
        str(VIP + R + 2 * FEE),
        str(2 * FEE),
        "0",
        "completed",
    ]
    assert kim[8] == local(first.payment.created_at)
    lee = by_reservation[str(second.id)]
    second.payment.refresh_from_db()
    assert (lee[6], lee[7]) == (str(second.payment.refunded_amount), "partly_refunded")
    assert int(lee[6]) > 0
    park = by_reservation[str(third.id)]
    assert (park[6], park[7]) == (str(VIP + FEE), "refunded")
    assert park[9] != ""


def test_the_ledger_of_days_in_seoul(operator_client, customer):
    kim = UserFactory(name="김민준")
    # 2025-03-01 in Seoul runs from 2025-02-28 15:00 to 2025-03-01 15:00 UTC.
    moments = {
        "before": datetime(2025, 2, 28, 14, 59, tzinfo=UTC),
        "first": datetime(2025, 2, 28, 15, 0, tzinfo=UTC),  # 00:00 in Seoul
        "last": datetime(2025, 3, 1, 14, 59, tzinfo=UTC),  # 23:59 in Seoul
        "after": datetime(2025, 3, 1, 15, 0, tzinfo=UTC),
    }
    entries = {}
    for name, moment in moments.items():
        entry = wallet_charge(user=kim, amount=10_000)
        LedgerEntry.objects.filter(id=entry.id).update(created_at=moment)
        entries[name] = entry

    rows = download(
        operator_client,
        reverse("console-export-ledger"),
        {"from": "2025-03-01", "to": "2025-03-01"},
    )

    assert rows[0] == [
        "entry id",
        "time (Asia/Seoul)",
        "customer email",
        "customer name",
        "kind",
        "amount (won)",
        "balance after (won)",
        "payment id",
    ]
    assert rows[1:] == [
        [
            str(entries["first"].id),
            "2025-03-01 00:00:00",
            kim.email,
            "김민준",
            "charge",
            "10000",
            "20000",
            "",
        ],
        [
            str(entries["last"].id),
            "2025-03-01 23:59:00",
            kim.email,
            "김민준",
            "charge",
            "10000",
            "30000",
            "",
        ],
    ]


def test_the_ledger_shows_payments_with_negative_amounts(operator_client, sale):
    schedule, first, *_ = sale
    today = timezone.localdate().isoformat()

    rows = download(operator_client, reverse("console-export-ledger"), {"from": today, "to": today})

    mine = [row for row in rows[1:] if row[7] == str(first.payment.id)]
    assert sorted((row[4], row[5]) for row in mine) == [
        ("booking_fee", str(-2 * FEE)),
        ("payment", str(-(VIP + R))),
    ]


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"from": "2025-03-01"},
        {"from": "yesterday", "to": "2025-03-01"},
        {"from": "2025-02-30", "to": "2025-03-01"},
        {"from": "2025-03-02", "to": "2025-03-01"},
        {"from": "2025-03-01", "to": "9999-12-31"},
    ],
    ids=["none", "no-to", "words", "no-such-day", "backwards", "end-of-time"],
)
def test_a_wrong_range_is_a_friendly_400(operator_client, params):
    response = operator_client.get(reverse("console-export-ledger"), params)

    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert "errornote" in page
    assert 'name="from"' in page  # the form, to try again


@pytest.mark.parametrize(
    "name, args",
    [
        ("console-export-buyers", True),
        ("console-export-payments", True),
        ("console-export-ledger", False),
    ],
)
def test_exports_are_for_staff_with_the_permission(
    client, customer_web_client, staff_client, name, args
):
    schedule = ScheduleFactory()
    url = reverse(name, args=[schedule.id] if args else [])
    params = {"from": "2025-03-01", "to": "2025-03-01"}

    for visitor in (client, customer_web_client):
        response = visitor.get(url, params)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("admin:login"))
    assert staff_client.get(url, params).status_code == 403


def test_an_unknown_performance_is_not_found(operator_client):
    url = reverse("console-export-buyers", args=[999_999])

    assert operator_client.get(url).status_code == 404
