from django.contrib import admin, messages
from django.utils import timezone

from concerts.models import QUEUE_SETTINGS_FIELDS
from concerts.services import catalog_changed

from .models import ConcertQueue
from .selectors import QueueStats, queue_stats
from .services import queue_set_paused


@admin.register(ConcertQueue)
class ConcertQueueAdmin(admin.ModelAdmin):
    """Per concert: who is waiting, who is shopping, how fast the line moves; pause/resume."""

    list_display = [
        "concert",
        "sale_opens_at",
        "state",
        "waiting",
        "admitted",
        "rate",
        "queue_max_active",
        "queue_admit_per_minute",
    ]
    list_filter = ["queue_paused", "is_published"]
    search_fields = ["title", "artist"]
    ordering = ["-sale_opens_at"]
    actions = ["pause", "resume"]
    fieldsets = [
        (None, {"fields": ["concert", "sale_opens_at", "state"]}),
        ("Now", {"fields": ["waiting", "admitted", "rate"]}),
        ("Admission", {"fields": QUEUE_SETTINGS_FIELDS}),
    ]
    readonly_fields = ["concert", "sale_opens_at", "state", "waiting", "admitted", "rate"]

    def has_add_permission(self, request):
        return False  # a queue comes with its concert

    def has_delete_permission(self, request, obj=None):
        return False

    def get_changelist_instance(self, request):
        changelist = super().get_changelist_instance(request)
        # One pipelined Redis round trip for the whole page, not three calls per row.
        self._stats = queue_stats(concert_ids=[c.id for c in changelist.result_list])
        return changelist

    def _stats_for(self, concert) -> QueueStats:
        stats = getattr(self, "_stats", {})
        if concert.id not in stats:
            stats = self._stats = queue_stats(concert_ids=[concert.id])
        return stats[concert.id]

    @admin.display(description="Concert")
    def concert(self, concert) -> str:
        return str(concert)

    @admin.display(description="State")
    def state(self, concert) -> str:
        if concert.sale_opens_at is None:
            return "sale not announced"
        if concert.sale_opens_at > timezone.now():
            return "before opening (arrivals are shuffled at opening)"
        return "paused" if concert.queue_paused else "admitting"

    @admin.display(description="Waiting")
    def waiting(self, concert) -> int:
        return self._stats_for(concert).waiting

    @admin.display(description="Admitted now")
    def admitted(self, concert) -> int:
        return self._stats_for(concert).admitted

    @admin.display(description="Admission rate (per minute, measured)")
    def rate(self, concert) -> str:
        return f"{self._stats_for(concert).rate_per_minute:.0f}"

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        catalog_changed()

    @admin.action(description="Pause admission of the selected queues")
    def pause(self, request, queryset):
        ids = list(queryset.values_list("id", flat=True))
        count = queue_set_paused(concert_ids=ids, paused=True)
        self.message_user(request, f"Admission paused for {count} concert(s).", messages.SUCCESS)

    @admin.action(description="Resume admission of the selected queues")
    def resume(self, request, queryset):
        ids = list(queryset.values_list("id", flat=True))
        count = queue_set_paused(concert_ids=ids, paused=False)
        self.message_user(request, f"Admission resumed for {count} concert(s).", messages.SUCCESS)
