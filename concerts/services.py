from collections.abc import Sequence
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import ProtectedError
from django.utils import timezone
from django.utils.translation import gettext as _

from .cache import catalog_invalidate, seat_maps_invalidate
from .errors import SeatMapInvalid
from .models import Concert, Schedule, Seat, SeatStatus

MAX_SEATS_PER_SCHEDULE = 20_000
SEAT_INSERT_BATCH = 1_000


@dataclass(frozen=True)
class SeatBlock:
    """A rectangle of seats: `rows` rows of `seats_per_row` seats in one section, one grade."""

    section: str
    grade: str
    price: int
    rows: int
    seats_per_row: int
    first_row: int = 1

    def positions(self) -> list[tuple[str, int, int]]:
        """(section, row, number) of every seat in the block."""
        return [
            (self.section, row, number)
            for row in range(self.first_row, self.first_row + self.rows)
            for number in range(1, self.seats_per_row + 1)
        ]

    def seats(self, schedule_id: int) -> list[Seat]:
        return [
            Seat(
                schedule_id=schedule_id,
                section=section,
                row=row,
                number=number,
                grade=self.grade,
                price=self.price,
            )
            for section, row, number in self.positions()
        ]


def concert_set_published(*, concert_ids: Sequence[int], published: bool) -> int:
    """Show concerts to customers, or hide them. Returns how many changed."""
    with transaction.atomic():
        changed = Concert.objects.filter(id__in=concert_ids).update(
            is_published=published, updated_at=timezone.now()
        )
        catalog_changed()
    return changed


def concert_set_waitlist(*, concert_ids: Sequence[int], enabled: bool) -> int:
    """Let customers join the waitlists of these concerts' performances, or stop them
    (entries already waiting keep their place and still receive returned seats)."""
    with transaction.atomic():
        changed = Concert.objects.filter(id__in=concert_ids).update(
            waitlist_enabled=enabled, updated_at=timezone.now()
        )
        catalog_changed()
    return changed


def seat_reprice(*, seat_id: int, grade: str, price: int) -> None:
    """An operator changes an available seat's grade or price. Only those two columns are
    written, and only while the seat is still available: a save can never put back a status
    or holder read before a customer took the seat."""
    with transaction.atomic():
        changed = Seat.objects.filter(id=seat_id, status=SeatStatus.AVAILABLE).update(
            grade=grade, price=price
        )
        if not changed:
            raise SeatMapInvalid(_("The seat was taken meanwhile; its price can no longer change."))
        catalog_changed()
        seat_maps_changed(Seat.objects.filter(id=seat_id).values_list("schedule_id", flat=True))


def seat_maps_changed(schedule_ids) -> None:
    """Call inside the transaction that changes seats: their schedules' cached seat maps are
    retired once it commits (concerts/cache.py)."""
    changed = set(schedule_ids)
    if changed:
        transaction.on_commit(lambda: seat_maps_invalidate(changed))


def catalog_changed() -> None:
    """Call inside the transaction that changed the catalog: invalidates once it commits.

    After commit, so a reader can never cache the old rows under the new version.
    """
    transaction.on_commit(catalog_invalidate)


def _check_blocks(blocks: Sequence[SeatBlock]) -> None:
    if not blocks:
        raise SeatMapInvalid(_("Give at least one block of seats."))
    price_of_grade: dict[str, int] = {}
    for block in blocks:
        if not block.section.strip() or not block.grade.strip():
            raise SeatMapInvalid(_("Every block needs a section and a grade."))
        if min(block.rows, block.seats_per_row, block.first_row, block.price) < 1:
            raise SeatMapInvalid(_("Rows, seats per row, first row and price must be positive."))
        known = price_of_grade.setdefault(block.grade, block.price)
        if known != block.price:
            raise SeatMapInvalid(
                _(
                    "Grade %(grade)s has two prices (%(one)s and %(other)s won); a grade has one price."
                )
                % {"grade": block.grade, "one": known, "other": block.price},
                details={"grade": block.grade},
            )
    total = sum(block.rows * block.seats_per_row for block in blocks)
    if total > MAX_SEATS_PER_SCHEDULE:
        raise SeatMapInvalid(
            _("%(total)s seats: a schedule may have at most %(most)s.")
            % {"total": total, "most": MAX_SEATS_PER_SCHEDULE}
        )


def seat_map_generate(
    *, schedule_ids: Sequence[int], blocks: Sequence[SeatBlock], replace: bool = False
) -> int:
    """Give each schedule the seats described by `blocks`, all or none. Returns seats created.

    Without `replace` the new seats are added to each existing map and must not overlap it.
    With `replace` the existing seats are deleted first, which is refused once any seat of
    the schedule is held or sold: those belong to customers.
    """
    _check_blocks(blocks)
    positions = [position for block in blocks for position in block.positions()]
    if len(set(positions)) != len(positions):
        raise SeatMapInvalid(_("Blocks overlap: the same section has the same row twice."))
    if not schedule_ids:
        raise SeatMapInvalid(_("Choose at least one schedule."))

    created = 0
    with transaction.atomic():
        # Lock the schedule rows in id order: generators of the same schedules serialise
        # instead of deadlocking. Holds never lock schedule rows, so sales are not blocked.
        schedules = list(
            Schedule.objects.select_for_update().filter(id__in=schedule_ids).order_by("id")
        )
        if len(schedules) != len(set(schedule_ids)):
            raise SeatMapInvalid(_("Schedule not found."))
        for schedule in schedules:
            created += _seat_map_generate_one(schedule, blocks, replace=replace)
        catalog_changed()
        seat_maps_changed(schedule_ids)
    return created


def _seat_map_generate_one(
    schedule: Schedule, blocks: Sequence[SeatBlock], *, replace: bool
) -> int:
    seats = [seat for block in blocks for seat in block.seats(schedule.id)]
    existing = Seat.objects.filter(schedule=schedule)
    if replace:
        if existing.exclude(status=SeatStatus.AVAILABLE).exists():
            raise SeatMapInvalid(
                _("%(schedule)s: seats are held or sold, so the map cannot be replaced.")
                % {"schedule": schedule}
            )
        try:
            # A seat named by a reservation's history is protected (on_delete=PROTECT): the
            # collector refuses before it deletes anything.
            existing.delete()
        except ProtectedError:
            raise SeatMapInvalid(
                _(
                    "%(schedule)s: seats were reserved before (their history must stay), so "
                    "the map cannot be replaced. Add seats instead."
                )
                % {"schedule": schedule}
            ) from None
    elif existing.count() + len(seats) > MAX_SEATS_PER_SCHEDULE:
        raise SeatMapInvalid(
            _("%(schedule)s: a schedule may have at most %(most)s seats.")
            % {"schedule": schedule, "most": MAX_SEATS_PER_SCHEDULE}
        )
    try:
        with transaction.atomic():
            Seat.objects.bulk_create(seats, batch_size=SEAT_INSERT_BATCH)
    except IntegrityError:
        raise SeatMapInvalid(
            _(
                "%(schedule)s: some of these seats already exist (same section, row and "
                "number). Use other sections or rows, or replace the map."
            )
            % {"schedule": schedule}
        ) from None
    return len(seats)
