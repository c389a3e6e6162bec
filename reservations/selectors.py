from collections.abc import Sequence
from datetime import datetime

from django.db.models import Count, Prefetch, Q, QuerySet, Sum
from django.utils.translation import gettext as _

from concerts.models import Seat
from config.errors import NotFound

from .models import (
    Reservation,
    ReservationSeat,
    ReservationStatus,
    WaitlistEntry,
    WaitlistStatus,
)


def reservation_effective_status(reservation: Reservation, now: datetime) -> str:
    """A held reservation past its end reads as expired at once, swept or not."""
    if reservation.status == ReservationStatus.HELD and reservation.expires_at <= now:
        return ReservationStatus.EXPIRED
    return reservation.status


def reservation_list_for_user(*, user_id: int) -> QuerySet[Reservation]:
    return (
        Reservation.objects.filter(user_id=user_id)
        .select_related("schedule__concert")
        .prefetch_related(
            # A plain list in `seat_items`; a service that has the rows in hand (a hold) sets
            # the same attribute, and the serializer reads only that.
            Prefetch(
                "items",
                queryset=ReservationSeat.objects.select_related("seat"),
                to_attr="seat_items",
            )
        )
        .order_by("-id")
    )


def reservation_get_for_user(*, user_id: int, reservation_id: int) -> Reservation:
    """The customer's own reservation. Another customer's is 'not found', never 'forbidden':
    its existence is not revealed."""
    reservation = reservation_list_for_user(user_id=user_id).filter(id=reservation_id).first()
    if reservation is None:
        raise NotFound(_("Reservation not found."))
    return reservation


# --- The waitlist ----------------------------------------------------------------------------


class AnyGrade:
    """Some waiting entry takes seats of any grade."""

    def __contains__(self, grade: object) -> bool:
        return True


ANY_GRADE = AnyGrade()


def waitlist_waited_grades(*, schedule_id: int) -> AnyGrade | frozenset[str]:
    """The grades that waiting waitlist entries of a performance ask for: ANY_GRADE when one
    takes any, an empty set when nobody waits. A seat of these grades that comes back is
    theirs, never free for anyone else in between (invariant 10)."""
    keys = set(
        WaitlistEntry.objects.filter(schedule_id=schedule_id, status=WaitlistStatus.WAITING)
        .order_by()  # the model's ordering would join DISTINCT and make it one row per entry
        .values_list("grade_key", flat=True)
        .distinct()
    )
    if "" in keys:
        return ANY_GRADE
    return frozenset(grade for key in keys for grade in key.strip("|").split("|"))


def grade_key_of(grades: Sequence[str] | None) -> str:
    """How an entry's grades are stored: "|VIP|R|", or "" for any grade."""
    return "|" + "|".join(grades) + "|" if grades else ""


def waits_for(grades: Sequence[str]) -> Q:
    """Waitlist entries that would take a seat of one of these grades."""
    q = Q(grade_key="")
    for grade in grades:
        q |= Q(grade_key__contains=f"|{grade}|")
    return q


def waitlist_entry_effective_status(entry: WaitlistEntry, now: datetime) -> str:
    """An offer past its end reads as lapsed at once, swept or not (like a hold)."""
    offer = entry.offer
    if entry.status == WaitlistStatus.OFFERED and offer is not None and offer.expires_at <= now:
        if offer.status == ReservationStatus.HELD:
            return WaitlistStatus.LAPSED
    return entry.status


def waitlist_list_for_user(*, user_id: int) -> QuerySet[WaitlistEntry]:
    """The customer's waitlist entries, the newest first, each with its performance, its
    offer (and the offer's seats) and its events."""
    return (
        WaitlistEntry.objects.filter(user_id=user_id)
        .select_related("schedule__concert", "offer")
        .prefetch_related(
            Prefetch(
                "offer__items",
                queryset=ReservationSeat.objects.select_related("seat"),
                to_attr="seat_items",
            ),
            "events",
        )
        .order_by("-joined_at", "-id")
    )


def waitlist_places(entry: WaitlistEntry) -> dict[str, int]:
    """A waiting entry's place in line for each grade it waits for: 1 + the waiting
    entries that joined before it and would take a seat of that grade."""
    if entry.status != WaitlistStatus.WAITING:
        return {}
    grades = entry.grades or sorted(
        Seat.objects.filter(schedule_id=entry.schedule_id)
        .values_list("grade", flat=True)
        .distinct()
    )
    ahead = WaitlistEntry.objects.filter(
        schedule_id=entry.schedule_id, status=WaitlistStatus.WAITING
    ).filter(Q(joined_at__lt=entry.joined_at) | Q(joined_at=entry.joined_at, id__lt=entry.id))
    return {grade: 1 + ahead.filter(waits_for([grade])).count() for grade in grades}


def waitlist_numbers(*, schedule_id: int | None = None) -> dict:
    """An operator's numbers of a performance's waitlist (all performances without an id):
    entries and seats waited for per grade (an entry for any grade counts in each), and the
    offers: made, taken (paid), lapsed, declined, and the share taken of those that ended."""
    entries = WaitlistEntry.objects.all()
    if schedule_id is not None:
        entries = entries.filter(schedule_id=schedule_id)
    waiting = list(
        entries.filter(status=WaitlistStatus.WAITING)
        .values_list("grade_key")
        .annotate(n=Count("id"), seats=Sum("quantity"))
    )
    grades = (
        Seat.objects.all() if schedule_id is None else Seat.objects.filter(schedule_id=schedule_id)
    )
    by_grade = {grade: [0, 0] for grade in sorted(set(grades.values_list("grade", flat=True)))}
    for grade_key, n, seats in waiting:
        for grade in grade_key.strip("|").split("|") if grade_key else by_grade:
            counts = by_grade.setdefault(grade, [0, 0])
            counts[0] += n
            counts[1] += seats
    offers = dict(entries.exclude(offered_at=None).values_list("status").annotate(n=Count("id")))
    made = sum(offers.values())
    taken = offers.get(WaitlistStatus.BOUGHT, 0)
    ended = taken + offers.get(WaitlistStatus.LAPSED, 0) + offers.get(WaitlistStatus.LEFT, 0)
    return {
        "waiting_entries": sum(n for _, n, _ in waiting),
        "by_grade": [
            {"grade": grade, "entries": n, "seats": seats} for grade, (n, seats) in by_grade.items()
        ],
        "offers_made": made,
        "offers_open": offers.get(WaitlistStatus.OFFERED, 0),
        "offers_taken": taken,
        "offers_lapsed": offers.get(WaitlistStatus.LAPSED, 0),
        "offers_declined": offers.get(WaitlistStatus.LEFT, 0),
        "taken_rate": round(taken / ended, 3) if ended else None,
    }
