from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from config.admin import ReadOnlyAdmin

from .models import Event


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ["id", "type", "aggregate", "occurred_at", "dispatched_at"]
    list_filter = ["type", "aggregate_type"]
    search_fields = ["=event_id", "=aggregate_id", "type"]
    fields = [
        "event_id",
        "type",
        "version",
        "occurred_at",
        "aggregate_type",
        "aggregate_id",
        "payload",
        "dispatched_at",
    ]
    readonly_fields = fields
    show_full_result_count = False

    @admin.display(description=_("Aggregate"))
    def aggregate(self, event: Event) -> str:
        return f"{event.aggregate_type}:{event.aggregate_id}"
