from django.contrib import admin
from django.utils import timezone

from config.admin import ReadOnlyAdmin, ReadOnlyInline
from config.money import format_won

from .models import Reservation, ReservationSeat
from .selectors import reservation_effective_status


class ReservationSeatInline(ReadOnlyInline):
    model = ReservationSeat
    fields = ["seat", "price_won"]
    readonly_fields = fields

    @admin.display(description="Price")
    def price_won(self, item: ReservationSeat) -> str:
        return format_won(item.price)


@admin.register(Reservation)
class ReservationAdmin(ReadOnlyAdmin):
    list_display = ["id", "user", "schedule", "status_now", "total", "expires_at", "created_at"]
    list_filter = ["status", "schedule__concert", "created_at"]
    search_fields = ["id", "user__email", "schedule__concert__title"]
    list_select_related = ["user", "schedule__concert"]
    fields = ["user", "schedule", "status_now", "total", "expires_at", "created_at", "updated_at"]
    readonly_fields = fields
    inlines = [ReservationSeatInline]
    show_full_result_count = False

    @admin.display(description="Status", ordering="status")
    def status_now(self, reservation: Reservation) -> str:
        return reservation_effective_status(reservation, timezone.now())

    @admin.display(description="Total", ordering="total_price")
    def total(self, reservation: Reservation) -> str:
        return format_won(reservation.total_price)
