from django.contrib import admin, messages
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from concerts.models import QUEUE_SETTINGS_FIELDS
from concerts.services import catalog_changed

from .models import ConcertQueue
from .selectors import QueuedCustomer, QueuePeek, QueueStats, queue_peek, queue_stats
from .services import queue_set_paused

# How many waiting and admitted customers the panel lists (the line can be a million long).
PEEK_LIMIT = 50


def _time(moment) -> str:
    return f"{timezone.localtime(moment):%m-%d %H:%M:%S}" if moment else ""


def _customers_table(headings: list[str], rows: list[tuple], total: int, empty: str) -> str:
    if not rows:
        return empty
    head = format_html_join("", "<th>{}</th>", ((heading,) for heading in headings))
    body = format_html_join(
        "",
        "<tr>{}</tr>",
        ((format_html_join("", "<td>{}</td>", ((cell,) for cell in row)),) for row in rows),
    )
    more = ""
    if total > len(rows):
        more = format_html(
            "<p>{}</p>",
            gettext("The first %(shown)s of %(total)s.") % {"shown": len(rows), "total": total},
        )
    return format_html(
        "<table><thead><tr>{}</tr></thead><tbody>{}</tbody></table>{}", head, body, more
    )


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
        (_("Now"), {"fields": ["waiting", "admitted", "rate", "shopping_time"]}),
        (
            _("Who is in the queue"),
            {
                "fields": ["waiting_customers", "admitted_customers"],
                "description": _("Read from the queue as it is now; reload for news."),
            },
        ),
        (_("Admission"), {"fields": QUEUE_SETTINGS_FIELDS}),
    ]
    readonly_fields = [
        "concert",
        "sale_opens_at",
        "state",
        "waiting",
        "admitted",
        "rate",
        "shopping_time",
        "waiting_customers",
        "admitted_customers",
    ]

    def has_add_permission(self, request):
        return False  # a queue comes with its concert

    def has_delete_permission(self, request, obj=None):
        return False

    def get_changelist_instance(self, request):
        changelist = super().get_changelist_instance(request)
        # One pipelined Redis round trip for the whole page, not three calls per row. Kept on
        # each row (this request's objects), never on the admin, which every request shares.
        stats = queue_stats(concert_ids=[c.id for c in changelist.result_list])
        for concert in changelist.result_list:
            concert.queue_stats = stats[concert.id]
        return changelist

    def _stats_for(self, concert) -> QueueStats:
        if getattr(concert, "queue_stats", None) is None:
            concert.queue_stats = queue_stats(concert_ids=[concert.id])[concert.id]
        return concert.queue_stats

    def _peek_for(self, concert) -> QueuePeek:
        """Who waits and who shops: one script call and one query, once per page."""
        if getattr(concert, "queue_peek", None) is None:
            concert.queue_peek = queue_peek(concert_id=concert.id, limit=PEEK_LIMIT)
        return concert.queue_peek

    @admin.display(description=_("Waiting, first in line"))
    def waiting_customers(self, concert) -> str:
        peek = self._peek_for(concert)
        return _customers_table(
            [gettext("Position"), gettext("Customer"), gettext("Waiting since")],
            [_waiting_row(customer) for customer in peek.first_waiting],
            peek.waiting,
            gettext("Nobody is waiting."),
        )

    @admin.display(description=_("Admitted (shopping now)"))
    def admitted_customers(self, concert) -> str:
        peek = self._peek_for(concert)
        return _customers_table(
            [gettext("Customer"), gettext("Session ends")],
            [(_customer(customer), _time(customer.until)) for customer in peek.first_admitted],
            peek.admitted,
            gettext("Nobody is admitted."),
        )

    @admin.display(description=_("Concert"))
    def concert(self, concert) -> str:
        return str(concert)

    @admin.display(description=_("State"))
    def state(self, concert) -> str:
        if concert.sale_opens_at is None:
            return gettext("sale not announced")
        if concert.sale_opens_at > timezone.now():
            return gettext("before opening (arrivals are shuffled at opening)")
        return gettext("paused") if concert.queue_paused else gettext("admitting")

    @admin.display(description=_("Waiting"))
    def waiting(self, concert) -> int:
        return self._stats_for(concert).waiting

    @admin.display(description=_("Admitted now"))
    def admitted(self, concert) -> int:
        return self._stats_for(concert).admitted

    @admin.display(description=_("Admission rate (per minute, measured)"))
    def rate(self, concert) -> str:
        return f"{self._stats_for(concert).rate_per_minute:.0f}"

    @admin.display(description=_("Shopping time (measured)"))
    def shopping_time(self, concert) -> str:
        stats = self._stats_for(concert)
        if stats.mean_session_seconds is None:
            return gettext("no admitted session has ended yet")
        return gettext("%(seconds)s s on average, over %(count)s ended sessions") % {
            "seconds": round(stats.mean_session_seconds),
            "count": stats.sessions_ended,
        }

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        catalog_changed()

    @admin.action(description=_("Pause admission of the selected queues"), permissions=["change"])
    def pause(self, request, queryset):
        ids = list(queryset.values_list("id", flat=True))
        count = queue_set_paused(concert_ids=ids, paused=True)
        self.message_user(
            request,
            gettext("Admission paused for %(count)s concert(s).") % {"count": count},
            messages.SUCCESS,
        )

    @admin.action(description=_("Resume admission of the selected queues"), permissions=["change"])
    def resume(self, request, queryset):
        ids = list(queryset.values_list("id", flat=True))
        count = queue_set_paused(concert_ids=ids, paused=False)
        self.message_user(
            request,
            gettext("Admission resumed for %(count)s concert(s).") % {"count": count},
            messages.SUCCESS,
        )


def _customer(customer: QueuedCustomer) -> str:
    return customer.email or gettext("customer %(id)s (account gone)") % {"id": customer.user_id}


def _waiting_row(customer: QueuedCustomer) -> tuple:
    since = _time(customer.since) if customer.since else gettext("before opening")
    return (customer.position, _customer(customer), since)
