"""The console's pages (docs/console.md): the index, the live on-sale dashboard and the JSON
its script polls, customer search and a customer's page. Thin: the reads are selectors; a
view checks who asks, reads, and shapes the answer for the page (money as won, times in
Asia/Seoul, every label translatable)."""

from datetime import datetime
from urllib.parse import urlencode

from django.db.models import F, Prefetch
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from accounts.models import User
from concerts.models import Concert, Schedule
from config.money import format_won
from reservations.models import ReservationStatus, WaitlistStatus
from reservations.selectors import reservation_effective_status, waitlist_entry_effective_status

from . import selectors
from .access import console_view, render_console
from .selectors import (
    SEAT_AVAILABLE,
    SEAT_HELD,
    SEAT_OFFERED,
    SEAT_SOLD,
    Money,
    QueueNow,
    QueueState,
    SalesMinute,
    Scope,
    SeatCounts,
    SeatGrid,
)

POLL_SECONDS = 3  # often enough to watch a sale; each poll is a handful of queries
INDEX_CONCERTS = 100

DASHBOARD_PERMISSIONS = ("concerts.view_concert", "payments.view_payment")
CUSTOMER_PERMISSIONS = (
    "accounts.view_user",
    "reservations.view_reservation",
    "payments.view_payment",
    "payments.view_wallet",
)


def local(moment: datetime | None, pattern: str = "%Y-%m-%d %H:%M") -> str:
    """An instant as operators read it: in Asia/Seoul (TIME_ZONE)."""
    return "—" if moment is None else timezone.localtime(moment).strftime(pattern)


def duration(seconds: int | None) -> str:
    if seconds is None:
        return "—"
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return _("%(hours)d h %(minutes)d min") % {"hours": hours, "minutes": minutes}
    if minutes:
        return _("%(minutes)d min %(seconds)d s") % {"minutes": minutes, "seconds": seconds}
    return _("%(seconds)d s") % {"seconds": seconds}


# --- Index -----------------------------------------------------------------------------------


@console_view("concerts.view_concert")
def index(request: HttpRequest) -> HttpResponse:
    """Concerts, the latest sale first, each with its dashboard and its performances'; the
    customer search; the ledger export."""
    concerts = (
        Concert.objects.prefetch_related(
            Prefetch("schedules", queryset=Schedule.objects.order_by("starts_at", "id"))
        )
        .order_by(F("sale_opens_at").desc(nulls_last=True), "-id")
        .all()[:INDEX_CONCERTS]
    )
    today = timezone.localdate()
    return render_console(
        request,
        "console/index.html",
        _("Operator console"),
        {
            "concerts": concerts,
            "limit": INDEX_CONCERTS,
            "ledger_from": today.replace(day=1).isoformat(),
            "ledger_to": today.isoformat(),
        },
    )


# --- The on-sale dashboard -------------------------------------------------------------------


def _scope(request: HttpRequest, concert_id: int) -> Scope:
    raw = request.GET.get("schedule", "").strip()
    if raw and not (raw.isascii() and raw.isdigit()):
        raise Http404("No such performance.")
    return selectors.dashboard_scope(concert_id=concert_id, schedule_id=int(raw) if raw else None)


@console_view(*DASHBOARD_PERMISSIONS)
def dashboard(request: HttpRequest, concert_id: int) -> HttpResponse:
    """The page: today's numbers drawn by the server, so it reads without its script; the
    script (static/console/dashboard.js) then redraws them from dashboard_data every few
    seconds, with the sales chart and the seat map."""
    scope = _scope(request, concert_id)
    data = dashboard_payload(scope, now=timezone.now(), with_layout=False)
    data_url = reverse("console-dashboard-data", args=[scope.concert.id])
    if scope.schedule:
        data_url += f"?schedule={scope.schedule.id}"
    return render_console(
        request,
        "console/dashboard.html",
        _("On-sale dashboard: %(concert)s") % {"concert": scope.concert},
        {
            "scope": scope,
            "data": data,
            "performances": _performance_links(scope),
            "config": {
                "data_url": data_url,
                "poll_seconds": POLL_SECONDS,
                "labels": _script_labels(),
            },
            "legend": _legend(data["seat_map"]),
        },
    )


@console_view(*DASHBOARD_PERMISSIONS)
def dashboard_data(request: HttpRequest, concert_id: int) -> JsonResponse:
    """What the dashboard's script redraws from; `?layout=1` adds where each seat is (asked
    once, and again only when the seat map changed)."""
    scope = _scope(request, concert_id)
    with_layout = request.GET.get("layout") == "1"
    return JsonResponse(dashboard_payload(scope, now=timezone.now(), with_layout=with_layout))


def dashboard_payload(scope: Scope, *, now: datetime, with_layout: bool) -> dict:
    """The dashboard's numbers, as JSON: raw numbers where the script computes, display
    strings (won, Seoul time, translated words) where it only shows them."""
    waited = selectors.waited_grades(scope)
    stock = selectors.inventory(scope, now=now, waited=waited)
    grid = None
    if scope.schedule is not None:
        grid = selectors.seat_grid(
            schedule_id=scope.schedule.id, now=now, waited=waited.get(scope.schedule.id, ())
        )
    return {
        "updated": _("Updated %(time)s") % {"time": local(now, "%H:%M:%S")},
        "queue": _queue_json(selectors.queue_now(concert=scope.concert, now=now)),
        "inventory": {
            "rows": [_counts_json(counts, grade=grade) for grade, counts in stock.by_grade.items()],
            "total": _counts_json(stock.total, grade=_("All grades")),
        },
        "performances": _performances_json(scope, stock) if scope.schedule is None else [],
        "money": _money_json(selectors.money(scope)),
        "sales": _sales_json(selectors.sales_per_minute(scope, now=now)),
        "seat_map": _grid_json(grid, with_layout=with_layout) if grid else None,
    }


def _performances_json(scope: Scope, stock: selectors.Inventory) -> list[dict]:
    """A concert's table of performances: each one's seats, dashboard and exports."""
    return [
        {
            **_counts_json(stock.by_schedule.get(schedule.id, SeatCounts())),
            "label": local(schedule.starts_at),
            "url": _dashboard_url(scope.concert.id, schedule.id),
            "buyers": "buyers.csv",
            "buyers_url": reverse("console-export-buyers", args=[schedule.id]),
            "payments": "payments.csv",
            "payments_url": reverse("console-export-payments", args=[schedule.id]),
        }
        for schedule in scope.schedules
    ]


def _dashboard_url(concert_id: int, schedule_id: int | None = None) -> str:
    url = reverse("console-dashboard", args=[concert_id])
    return url if schedule_id is None else f"{url}?schedule={schedule_id}"


def _performance_links(scope: Scope) -> list[dict]:
    """The picker above the dashboard: every performance, and the whole concert."""
    links = [
        {
            "label": _("All performances"),
            "url": _dashboard_url(scope.concert.id),
            "current": scope.schedule is None,
        }
    ]
    for schedule in scope.schedules:
        links.append(
            {
                "label": local(schedule.starts_at),
                "url": _dashboard_url(scope.concert.id, schedule.id),
                "current": schedule == scope.schedule,
            }
        )
    return links


QUEUE_STATE_NAMES = {
    QueueState.NOT_ANNOUNCED: gettext_lazy("sale not announced"),
    QueueState.BEFORE_OPENING: gettext_lazy("before opening (arrivals are shuffled at opening)"),
    QueueState.ADMITTING: gettext_lazy("admitting"),
    QueueState.PAUSED: gettext_lazy("paused: nobody new is let in"),
}


def _queue_json(queue: QueueNow | None) -> dict:
    if queue is None:
        return {
            "available": False,
            "message": _("The queue's numbers are unavailable: Redis does not answer."),
        }
    return {
        "available": True,
        "state": queue.state,
        "state_name": str(QUEUE_STATE_NAMES[queue.state]),
        "paused": queue.paused,
        "paused_name": _("yes") if queue.paused else _("no"),
        "waiting": queue.waiting,
        "admitted": queue.admitted,
        "rate_per_minute": round(queue.rate_per_minute),
        "eta_last": duration(queue.eta_last_seconds),
    }


def _counts_json(counts: SeatCounts, **extra) -> dict:
    return {
        **extra,
        "total": counts.total,
        "available": counts.available,
        "held": counts.held,
        "offered": counts.offered,
        "sold": counts.sold,
    }


def _money_json(money: Money) -> dict:
    amounts = {
        "paid": money.paid,
        "tickets_paid": money.tickets_paid,
        "booking_fees": money.booking_fees,
        "refunded": money.refunded,
        "tickets_refunded": money.tickets_refunded,
        "cancellation_fees": money.cancellation_fees,
        "booking_fees_refunded": money.booking_fees_refunded,
        "net": money.net,
        "net_tickets": money.net_tickets,
        "net_booking_fees": money.net_booking_fees,
    }
    return {
        "payments": money.payments,
        "cancellations": money.cancellations,
        "won": amounts,
        "shown": {name: format_won(amount) for name, amount in amounts.items()},
    }


def _sales_json(series: list[SalesMinute]) -> dict:
    def title(minute: SalesMinute) -> str:
        tickets = ngettext("%(count)d ticket", "%(count)d tickets", minute.tickets) % {
            "count": minute.tickets
        }
        payments = ngettext("%(count)d payment", "%(count)d payments", minute.payments) % {
            "count": minute.payments
        }
        return f"{local(minute.starts_at, '%H:%M')}: {tickets}, {payments}"

    return {
        "minutes": [
            {
                "label": local(minute.starts_at, "%H:%M"),
                "tickets": minute.tickets,
                "title": title(minute),
            }
            for minute in series
        ],
        "max_tickets": max((minute.tickets for minute in series), default=0),
        "tickets": sum(minute.tickets for minute in series),
        "payments": sum(minute.payments for minute in series),
        "last_minute_tickets": series[-2].tickets if len(series) > 1 else 0,
    }


def _grid_json(grid: SeatGrid, *, with_layout: bool) -> dict:
    data = {"key": grid.key, "states": grid.states, "counts": grid.counts}
    if with_layout:
        data["layout"] = [list(seat) for seat in grid.layout]
    return data


def _legend(seat_map: dict | None) -> list[dict]:
    counts = seat_map["counts"] if seat_map else {}
    return [
        {"code": code, "name": name, "count": counts.get(code, 0)}
        for code, name in _seat_state_names().items()
    ]


def _seat_state_names() -> dict[str, str]:
    return {
        SEAT_AVAILABLE: _("Available"),
        SEAT_HELD: _("Held"),
        SEAT_OFFERED: _("Offered to the waitlist"),
        SEAT_SOLD: _("Sold"),
    }


def _script_labels() -> dict:
    """The words dashboard.js writes itself, translated here: the script has none."""
    return {
        "seat_states": _seat_state_names(),
        "refresh_failed": _("Could not refresh (%(error)s); trying again."),
        "logged_out": _("Your admin session has ended: reload the page to log in again."),
        "chart": _("Tickets sold per minute, the last 60 minutes"),
        "no_seats": _("This performance has no seats yet."),
    }


# --- Customers -------------------------------------------------------------------------------


@console_view(*CUSTOMER_PERMISSIONS)
def customers(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()
    found = selectors.customer_search(query=query)
    return render_console(
        request,
        "console/customers.html",
        _("Customers"),
        {"query": query, "found": found},
    )


@console_view(*CUSTOMER_PERMISSIONS)
def customer(request: HttpRequest, user_id: int) -> HttpResponse:
    """One customer's queue admissions, reservations, payments, cancellations, waitlist
    entries and wallet, newest first, each row linking to its admin page. Never their API
    token: only its first characters, to tell tokens apart on the phone."""
    person = get_object_or_404(User, id=user_id)
    records = selectors.customer_records(user=person)
    now = timezone.now()
    return render_console(
        request,
        "console/customer.html",
        _("Customer: %(email)s") % {"email": person.email},
        {
            "person": person,
            "records": records,
            "admissions": [_admission_row(row, now) for row in records.admissions.rows],
            "reservations": [_reservation_row(row, now) for row in records.reservations.rows],
            "payments": [_payment_row(row) for row in records.payments.rows],
            "cancellations": [_cancellation_row(row) for row in records.cancellations.rows],
            "waitlist": [_waitlist_row(row, now) for row in records.waitlist.rows],
            "ledger": [_ledger_row(row) for row in records.ledger.rows],
            "balance": format_won(records.wallet.balance if records.wallet else 0),
            "all_links": _admin_lists_of(person, records),
        },
    )


def _change_url(model: str, pk: int) -> str:
    return reverse(f"admin:{model}_change", args=[pk])


def _admin_lists_of(person: User, records: selectors.CustomerRecords) -> dict[str, str]:
    """The full admin lists, filtered to the customer, behind each capped table here."""
    by_user = f"?user__id__exact={person.id}"
    links = {
        "user": _change_url("accounts_user", person.id),
        "reservations": reverse("admin:reservations_reservation_changelist") + by_user,
        "payments": reverse("admin:payments_payment_changelist") + by_user,
        # The cancellation list filters by no customer; its search looks at their email.
        "cancellations": reverse("admin:payments_cancellation_changelist")
        + "?"
        + urlencode({"q": person.email}),
        "waitlist": reverse("admin:reservations_waitlistentry_changelist") + by_user,
    }
    if records.wallet is not None:
        links["wallet"] = _change_url("payments_wallet", records.wallet.id)
        links["ledger"] = (
            reverse("admin:payments_ledgerentry_changelist")
            + f"?wallet__id__exact={records.wallet.id}"
        )
    return links


def _admission_row(admission, now: datetime) -> dict:
    if admission.ended_at is not None:
        state = _("ended")
    elif admission.admitted_until > now:
        state = _("shopping")
    else:
        state = _("session over")
    return {
        "url": _change_url("queueing_concertqueue", admission.concert_id),
        "concert": str(admission.concert),
        "admitted_at": local(admission.admitted_at, "%Y-%m-%d %H:%M:%S"),
        "admitted_until": local(admission.admitted_until, "%Y-%m-%d %H:%M:%S"),
        "ended_at": local(admission.ended_at, "%Y-%m-%d %H:%M:%S"),
        "state": state,
    }


def _reservation_row(reservation, now: datetime) -> dict:
    return {
        "id": reservation.id,
        "url": _change_url("reservations_reservation", reservation.id),
        "performance": str(reservation.schedule),
        "dashboard": _dashboard_url(reservation.schedule.concert_id, reservation.schedule_id),
        "status": ReservationStatus(reservation_effective_status(reservation, now)).label,
        "source": reservation.source,
        "seats": selectors.reservation_seat_labels(reservation),
        "total": format_won(reservation.total_price),
        "booking_fees": format_won(reservation.booking_fee_total),
        "created_at": local(reservation.created_at),
        "expires_at": local(reservation.expires_at),
    }


def _payment_row(payment) -> dict:
    return {
        "id": payment.id,
        "url": _change_url("payments_payment", payment.id),
        "reservation_id": payment.reservation_id,
        "reservation_url": _change_url("reservations_reservation", payment.reservation_id),
        "amount": format_won(payment.amount),
        "booking_fee": format_won(payment.booking_fee),
        "refunded": format_won(payment.refunded_amount),
        "status": payment.get_status_display(),
        "created_at": local(payment.created_at),
        "refunded_at": local(payment.refunded_at),
    }


def _cancellation_row(cancellation) -> dict:
    return {
        "id": cancellation.id,
        "url": _change_url("payments_cancellation", cancellation.id),
        "reservation_id": cancellation.reservation_id,
        "reservation_url": _change_url("reservations_reservation", cancellation.reservation_id),
        "kind": cancellation.get_kind_display(),
        "by": cancellation.created_by.email,
        "amount": format_won(cancellation.amount),
        "fee": format_won(cancellation.fee),
        "reason": cancellation.reason,
        "created_at": local(cancellation.created_at),
    }


def _waitlist_row(entry, now: datetime) -> dict:
    return {
        "id": entry.id,
        "url": _change_url("reservations_waitlistentry", entry.id),
        "performance": str(entry.schedule),
        "quantity": entry.quantity,
        "grades": ", ".join(entry.grades) if entry.grades else _("any"),
        "status": WaitlistStatus(waitlist_entry_effective_status(entry, now)).label,
        "auto_pay": entry.auto_pay,
        "joined_at": local(entry.joined_at),
        "offer_id": entry.offer_id,
        "offer_url": _change_url("reservations_reservation", entry.offer_id)
        if entry.offer_id
        else None,
    }


def _ledger_row(entry) -> dict:
    return {
        "id": entry.id,
        "url": _change_url("payments_ledgerentry", entry.id),
        "created_at": local(entry.created_at, "%Y-%m-%d %H:%M:%S"),
        "kind": entry.get_kind_display(),
        "amount": format_won(entry.amount),
        "balance_after": format_won(entry.balance_after),
        "payment_id": entry.payment_id,
        "payment_url": _change_url("payments_payment", entry.payment_id)
        if entry.payment_id
        else None,
    }
