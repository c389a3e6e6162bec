from django.contrib import admin, messages
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from concerts.models import Schedule
from config.admin import ReadOnlyAdmin, ReadOnlyInline
from config.money import format_won

from . import waitlist
from .models import Reservation, ReservationSeat, WaitlistEntry, WaitlistEvent, WaitlistStatus
from .selectors import (
    reservation_effective_status,
    waitlist_entry_effective_status,
    waitlist_numbers,
    waitlist_places,
)


class ReservationSeatInline(ReadOnlyInline):
    model = ReservationSeat
    fields = ["seat", "price_won"]
    readonly_fields = fields

    @admin.display(description="Price")
    def price_won(self, item: ReservationSeat) -> str:
        return format_won(item.price)


@admin.register(Reservation)
class ReservationAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "user",
        "schedule",
        "status_now",
        "source",
        "total",
        "expires_at",
        "created_at",
    ]
    list_filter = ["status", "source", "schedule__concert", "created_at"]
    search_fields = ["id", "user__email", "schedule__concert__title"]
    list_select_related = ["user", "schedule__concert"]
    fields = [
        "user",
        "schedule",
        "status_now",
        "source",
        "total",
        "expires_at",
        "created_at",
        "updated_at",
    ]
    readonly_fields = fields
    inlines = [ReservationSeatInline]
    show_full_result_count = False

    @admin.display(description="Status", ordering="status")
    def status_now(self, reservation: Reservation) -> str:
        return reservation_effective_status(reservation, timezone.now())

    @admin.display(description="Total", ordering="total_price")
    def total(self, reservation: Reservation) -> str:
        return format_won(reservation.total_price)


class WaitlistEventInline(ReadOnlyInline):
    model = WaitlistEvent
    fields = ["created_at", "kind", "reservation", "details"]
    readonly_fields = fields


@admin.register(WaitlistEntry)
class WaitlistEntryAdmin(ReadOnlyAdmin):
    """A performance's 취소표 line: who waits for what since when, the offers made, taken and
    lapsed, and the numbers above the list (filter by performance for one line's)."""

    list_display = [
        "id",
        "user",
        "schedule",
        "quantity",
        "grades_shown",
        "status_now",
        "place",
        "joined_at",
        "offer_link",
        "auto_pay",
        "ended_at",
    ]
    list_filter = ["status", "schedule__concert", "schedule", "auto_pay"]
    search_fields = ["=id", "user__email", "schedule__concert__title"]
    list_select_related = ["user", "schedule__concert", "offer"]
    ordering = ["schedule", "joined_at", "id"]
    fields = [
        "user",
        "schedule",
        "quantity",
        "grades_shown",
        "status_now",
        "place",
        "auto_pay",
        "max_total",
        "joined_at",
        "offer_link",
        "offered_at",
        "ended_at",
    ]
    readonly_fields = fields
    inlines = [WaitlistEventInline]
    actions = ["remove_from_waitlist", "hand_on_now"]
    change_list_template = "admin/reservations/waitlistentry/change_list.html"
    show_full_result_count = False

    @admin.display(description="Grades")
    def grades_shown(self, entry: WaitlistEntry) -> str:
        return ", ".join(entry.grades) if entry.grades else "any"

    @admin.display(description="Status", ordering="status")
    def status_now(self, entry: WaitlistEntry) -> str:
        return waitlist_entry_effective_status(entry, timezone.now())

    @admin.display(description="Place in line")
    def place(self, entry: WaitlistEntry) -> str:
        places = waitlist_places(entry)
        return ", ".join(f"{grade} #{n}" for grade, n in places.items()) or "—"

    @admin.display(description="Offer")
    def offer_link(self, entry: WaitlistEntry) -> str:
        if entry.offer_id is None:
            return "—"
        url = reverse("admin:reservations_reservation_change", args=[entry.offer_id])
        return format_html('<a href="{}">Reservation {}</a>', url, entry.offer_id)

    def changelist_view(self, request, extra_context=None):
        schedule_id = request.GET.get("schedule__id__exact")
        schedule = Schedule.objects.filter(id=schedule_id).first() if schedule_id else None
        extra_context = {
            **(extra_context or {}),
            "waitlist_schedule": schedule,
            "waitlist_numbers": waitlist_numbers(schedule_id=schedule.id if schedule else None),
        }
        return super().changelist_view(request, extra_context)

    @admin.action(description="Take the selected customers off the waitlist (offers declined)")
    def remove_from_waitlist(self, request, queryset):
        removed = 0
        for entry in queryset.filter(status__in=[WaitlistStatus.WAITING, WaitlistStatus.OFFERED]):
            waitlist.waitlist_leave(user=entry.user, entry_id=entry.id)
            removed += 1
        self.message_user(request, f"{removed} entries taken off the waitlist.", messages.SUCCESS)

    @admin.action(description="Offer seats on sale to the selected entries' lines now")
    def hand_on_now(self, request, queryset):
        """Seats on sale while customers wait for them (they came back before anyone waited,
        or the waitlist was off): offered to the line now, oldest first."""
        made = waitlist.waitlist_hand_on_now(
            schedule_ids=queryset.values_list("schedule_id", flat=True).distinct()
        )
        self.message_user(request, f"{made} offers made.", messages.SUCCESS)
