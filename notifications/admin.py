from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from config.admin import ReadOnlyAdmin

from .models import CustomerMessage
from .services import customer_messages_resend

RESEND_PERMISSION = "notifications.resend_customermessage"


@admin.register(CustomerMessage)
class CustomerMessageAdmin(ReadOnlyAdmin):
    """What was (or will be) sent to whom about which event; read-only, with one action."""

    list_display = [
        "id",
        "kind",
        "channel",
        "to",
        "status",
        "attempts",
        "sent_at",
        "event_link",
    ]
    list_filter = ["status", "kind", "channel"]
    search_fields = ["=to", "=message_id", "=event__event_id"]
    list_select_related = ["event"]
    fields = [
        "event_link",
        "customer",
        "channel",
        "kind",
        "to",
        "subject",
        "status",
        "attempts",
        "next_attempt_at",
        "lease_until",
        "sent_at",
        "message_id",
        "last_error",
        "created_at",
    ]
    readonly_fields = fields
    actions = ["send_again"]
    show_full_result_count = False

    @admin.display(description=_("Event"))
    def event_link(self, message: CustomerMessage) -> str:
        url = reverse("admin:events_event_change", args=[message.event_id])
        return format_html('<a href="{}">{}</a>', url, message.event.type)

    def has_resend_permission(self, request) -> bool:
        return request.user.has_perm(RESEND_PERMISSION)

    @admin.action(description=_("Send the selected messages again"), permissions=["resend"])
    def send_again(self, request, queryset):
        asked = queryset.count()
        queued = customer_messages_resend(
            message_ids=list(queryset.values_list("id", flat=True)), operator=request.user
        )
        self.message_user(
            request,
            ngettext(
                "%(count)s message will be sent again.",
                "%(count)s messages will be sent again.",
                queued,
            )
            % {"count": queued},
            messages.SUCCESS,
        )
        if queued < asked:
            self.message_user(
                request,
                gettext("Messages being sent right now were left as they are."),
                messages.WARNING,
            )
