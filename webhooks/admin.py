from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.text import Truncator
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from .models import DeliveryStatus, WebhookDelivery, WebhookEndpoint, secret_generate
from .services import webhook_deliveries_redeliver
from .types import EVENT_TYPES


def secret_masked(secret: str) -> str:
    """Enough to tell two secrets apart, not enough to sign with."""
    return f"{secret[:6]}{'•' * 12}{secret[-4:]}" if secret else ""


class WebhookEndpointForm(forms.ModelForm):
    url = forms.URLField(
        label=_("URL"),
        max_length=500,
        assume_scheme="https",  # a URL typed without its scheme
        help_text=WebhookEndpoint._meta.get_field("url").help_text,
    )
    event_types = forms.MultipleChoiceField(
        label=_("Event types"),
        choices=EVENT_TYPES,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("None chosen: every type, including types added later."),
    )
    new_secret = forms.CharField(
        label=_("New secret"),
        required=False,
        max_length=100,
        strip=True,
        widget=forms.PasswordInput(render_value=False),
        help_text=_(
            "Leave blank to keep the current secret (or, for a new endpoint, to have one "
            "generated). At least 24 characters."
        ),
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["description", "url", "event_types", "active"]

    def clean_new_secret(self) -> str:
        secret = self.cleaned_data["new_secret"]
        if secret and len(secret) < 24:
            raise forms.ValidationError(gettext("A secret has at least 24 characters."))
        return secret


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    form = WebhookEndpointForm
    list_display = ["__str__", "url", "active", "types", "delivery_log", "created_at"]
    list_filter = ["active"]
    search_fields = ["url", "description"]
    readonly_fields = ["signing_secret", "delivery_log", "created_at"]

    def get_fields(self, request, obj=None):
        fields = ["description", "url", "event_types", "active", "new_secret"]
        if obj is not None:
            fields[4:4] = ["signing_secret"]
            fields += ["delivery_log", "created_at"]
        return fields

    @admin.display(description=_("Event types"))
    def types(self, endpoint: WebhookEndpoint) -> str:
        return ", ".join(endpoint.event_types) if endpoint.event_types else gettext("all")

    @admin.display(description=_("Signing secret"))
    def signing_secret(self, endpoint: WebhookEndpoint) -> str:
        return secret_masked(endpoint.secret)

    @admin.display(description=_("Delivery log"))
    def delivery_log(self, endpoint: WebhookEndpoint) -> str:
        if endpoint.pk is None:
            return "-"
        url = reverse("admin:webhooks_webhookdelivery_changelist")
        return format_html(
            '<a href="{}?endpoint__id__exact={}">{}</a>', url, endpoint.pk, gettext("Deliveries")
        )

    def save_model(self, request, obj, form, change):
        new_secret = form.cleaned_data.get("new_secret")
        if new_secret:
            obj.secret = new_secret
        elif not obj.secret:
            obj.secret = secret_generate()
        super().save_model(request, obj, form, change)

    def response_add(self, request, obj, post_url_continue=None):
        """The secret in full, this once (it is shown masked from now on), on the page that
        answers the POST: it is never put in a message, a cookie or the session."""
        return TemplateResponse(
            request,
            "admin/webhooks/webhookendpoint/created.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "title": gettext("Webhook endpoint added"),
                "endpoint": obj,
                "secret": obj.secret,
                "change_url": reverse("admin:webhooks_webhookendpoint_change", args=[obj.pk]),
            },
        )


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    """The delivery log: read only, but for sending a delivery again."""

    list_display = [
        "id",
        "event_type",
        "aggregate",
        "endpoint",
        "status",
        "attempts",
        "last_answer",
        "next_attempt",
        "delivered_at",
    ]
    list_filter = ["status", "endpoint", "event_type"]
    search_fields = ["=event__event_id", "=aggregate_id"]
    list_select_related = ["endpoint", "event"]
    show_full_result_count = False
    actions = ["redeliver"]
    fields = [
        "endpoint",
        "event_link",
        "event_type",
        "aggregate",
        "status",
        "attempts",
        "first_attempt_at",
        "last_attempt_at",
        "next_attempt_at",
        "last_status_code",
        "last_response",
        "last_error",
        "delivered_at",
        "created_at",
    ]
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_redeliver_permission(self, request) -> bool:
        return request.user.has_perm("webhooks.change_webhookdelivery")

    @admin.display(description=_("Aggregate"))
    def aggregate(self, delivery: WebhookDelivery) -> str:
        return f"{delivery.aggregate_type}:{delivery.aggregate_id}"

    @admin.display(description=_("Event"))
    def event_link(self, delivery: WebhookDelivery) -> str:
        url = reverse("admin:events_event_change", args=[delivery.event_id])
        return format_html('<a href="{}">{}</a>', url, delivery.event.event_id)

    @admin.display(description=_("Last answer"))
    def last_answer(self, delivery: WebhookDelivery) -> str:
        if delivery.last_status_code is not None:
            return f"{delivery.last_status_code} {Truncator(delivery.last_response).chars(40)}"
        return Truncator(delivery.last_error).chars(60) or "-"

    @admin.display(description=_("Next attempt"), ordering="next_attempt_at")
    def next_attempt(self, delivery: WebhookDelivery):
        return delivery.next_attempt_at if delivery.status == DeliveryStatus.PENDING else "-"

    @admin.action(description=_("Send the selected deliveries again"), permissions=["redeliver"])
    def redeliver(self, request, queryset):
        count = webhook_deliveries_redeliver(delivery_ids=queryset.values_list("id", flat=True))
        skipped = queryset.count() - count
        self.message_user(
            request,
            ngettext(
                "%(count)d delivery will be sent again.",
                "%(count)d deliveries will be sent again.",
                count,
            )
            % {"count": count},
            messages.SUCCESS,
        )
        if skipped > 0:
            self.message_user(
                request,
                ngettext(
                    "%(count)d delivery is still pending and was left as it is.",
                    "%(count)d deliveries are still pending and were left as they are.",
                    skipped,
                )
                % {"count": skipped},
                messages.WARNING,
            )
