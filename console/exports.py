"""CSV exports for the box office and the books (docs/console.md, "Exports").

UTF-8 with a byte order mark first: without it Excel reads the file as the system's legacy
code page and Korean names turn to mojibake. Streamed row by row from a database iterator,
so a sold-out arena's buyers or a month's ledger never sit in memory whole. Money is whole
won as plain integers (a spreadsheet sums them); times are Asia/Seoul (TIME_ZONE), written
"YYYY-MM-DD HH:MM:SS"; statuses and kinds are the stable codes the API uses, headers follow
the operator's language.
"""

import csv
from collections.abc import Iterable, Iterator
from datetime import date, datetime, time, timedelta

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from concerts.models import Schedule
from payments.models import CancellationKind, LedgerEntry, Payment
from reservations.models import ReservationSeat, ReservationStatus

from .access import console_view, render_console
from .selectors import seat_label

BOM = "\ufeff"
CHUNK_ROWS = 2000
# A cell a spreadsheet would run as a formula (CSV injection): customers choose their names.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class _Echo:
    """csv.writer writes into this and gets the line back, to be streamed."""

    def write(self, line: str) -> str:
        return line


def cell(value) -> str | int:
    """A value as written in the file: times in Seoul, no formula a spreadsheet would run."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value if isinstance(value, int) else str(value)


def csv_response(filename: str, header: list[str], rows: Iterable[Iterable]) -> HttpResponse:
    """A streamed CSV download: the BOM, a header line, then one line per row."""
    writer = csv.writer(_Echo())

    def lines() -> Iterator[str]:
        yield BOM + writer.writerow([str(name) for name in header])
        for row in rows:
            yield writer.writerow([cell(value) for value in row])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _zone() -> str:
    return timezone.get_current_timezone_name()


# --- Buyers of a performance ------------------------------------------------------------------


@console_view("reservations.view_reservation", "accounts.view_user")
def buyers_csv(request: HttpRequest, schedule_id: int) -> HttpResponse:
    """One line per ticket paid for (the door list, the box office's count): every seat of
    every paid reservation, with its status now; a cancelled or refunded seat stays listed,
    with when, so the file also answers "who had this seat"."""
    schedule = get_object_or_404(Schedule, id=schedule_id)
    tickets = (
        ReservationSeat.objects.filter(
            reservation__schedule_id=schedule.id, reservation__payment__isnull=False
        )
        .order_by("reservation_id", "seat__section", "seat__row", "seat__number")
        .values_list(
            "reservation_id",
            "reservation__user__email",
            "reservation__user__name",
            "seat__section",
            "seat__row",
            "seat__number",
            "seat__grade",
            "price",
            "booking_fee",
            "reservation__payment__created_at",
            "reservation__status",
            "cancelled_at",
            "cancellation_item__cancellation__kind",
        )
        .iterator(chunk_size=CHUNK_ROWS)
    )
    header = [
        _("reservation id"),
        _("customer email"),
        _("customer name"),
        _("seat"),
        _("grade"),
        _("price (won)"),
        _("booking fee (won)"),
        _("paid at (%(zone)s)") % {"zone": _zone()},
        _("status"),
        _("cancelled at (%(zone)s)") % {"zone": _zone()},
    ]
    rows = (
        (
            reservation_id,
            email,
            name,
            seat_label(section, row, number),
            grade,
            price,
            booking_fee,
            paid_at,
            ticket_status(status, cancelled_at, kind),
            cancelled_at,
        )
        for (
            reservation_id,
            email,
            name,
            section,
            row,
            number,
            grade,
            price,
            booking_fee,
            paid_at,
            status,
            cancelled_at,
            kind,
        ) in tickets
    )
    return csv_response(f"schedule-{schedule.id}-buyers.csv", header, rows)


def ticket_status(reservation_status: str, cancelled_at: datetime | None, kind: str | None) -> str:
    """A paid seat is confirmed until it is cancelled (by the customer) or refunded (by an
    operator); its reservation may stay confirmed for the seats left."""
    if cancelled_at is None:
        return reservation_status
    if kind == CancellationKind.CUSTOMER:
        return ReservationStatus.CANCELLED
    return ReservationStatus.REFUNDED


# --- Payments of a performance -----------------------------------------------------------------


@console_view("payments.view_payment", "accounts.view_user")
def payments_csv(request: HttpRequest, schedule_id: int) -> HttpResponse:
    schedule = get_object_or_404(Schedule, id=schedule_id)
    payments = (
        Payment.objects.filter(reservation__schedule_id=schedule.id)
        .order_by("id")
        .values_list(
            "id",
            "reservation_id",
            "user__email",
            "user__name",
            "amount",
            "booking_fee",
            "refunded_amount",
            "status",
            "created_at",
            "refunded_at",
        )
        .iterator(chunk_size=CHUNK_ROWS)
    )
    header = [
        _("payment id"),
        _("reservation id"),
        _("customer email"),
        _("customer name"),
        _("amount (won)"),
        _("of which booking fees (won)"),
        _("refunded (won)"),
        _("status"),
        _("created at (%(zone)s)") % {"zone": _zone()},
        _("refunded at (%(zone)s)") % {"zone": _zone()},
    ]
    return csv_response(f"schedule-{schedule.id}-payments.csv", header, payments)


# --- The ledger of a date range -----------------------------------------------------------------


class BadRange(ValueError):
    pass


def ledger_range(raw_from: str, raw_to: str) -> tuple[date, date, datetime, datetime]:
    """`from` and `to` (both included) as days in Asia/Seoul, and the instants that bound
    them: from midnight of the first day to midnight after the last."""
    try:
        first = datetime.strptime(raw_from.strip(), "%Y-%m-%d").date()
        last = datetime.strptime(raw_to.strip(), "%Y-%m-%d").date()
    except ValueError:
        raise BadRange(
            _('Give "from" and "to" as dates written YYYY-MM-DD, e.g. 2025-03-01.')
        ) from None
    if first > last:
        raise BadRange(
            _('"from" (%(first)s) is after "to" (%(last)s).') % {"first": first, "last": last}
        )
    if last == date.max:
        raise BadRange(_('"to" is too far in the future.'))
    zone = timezone.get_current_timezone()
    start = datetime.combine(first, time.min, tzinfo=zone)
    end = datetime.combine(last + timedelta(days=1), time.min, tzinfo=zone)
    return first, last, start, end


@console_view("payments.view_ledgerentry", "accounts.view_user")
def ledger_csv(request: HttpRequest) -> HttpResponse:
    """Every wallet movement between two days, for the books: charges, payments, booking
    fees, refunds, cancellation fees, each with the balance it left. A wrong date answers a
    page saying what to fix (400), with the form to try again."""
    raw_from, raw_to = request.GET.get("from", ""), request.GET.get("to", "")
    try:
        first, last, start, end = ledger_range(raw_from, raw_to)
    except BadRange as problem:
        return render_console(
            request,
            "console/bad_request.html",
            _("The ledger export needs a date range"),
            {
                "problem": str(problem),
                "ledger_from": raw_from,
                "ledger_to": raw_to,
                "ledger_url": reverse("console-export-ledger"),
            },
            status=400,
        )
    entries = (
        LedgerEntry.objects.filter(created_at__gte=start, created_at__lt=end)
        .order_by("id")
        .values_list(
            "id",
            "created_at",
            "wallet__user__email",
            "wallet__user__name",
            "kind",
            "amount",
            "balance_after",
            "payment_id",
        )
        .iterator(chunk_size=CHUNK_ROWS)
    )
    header = [
        _("entry id"),
        _("time (%(zone)s)") % {"zone": _zone()},
        _("customer email"),
        _("customer name"),
        _("kind"),
        _("amount (won)"),
        _("balance after (won)"),
        _("payment id"),
    ]
    return csv_response(f"ledger-{first.isoformat()}-to-{last.isoformat()}.csv", header, entries)
