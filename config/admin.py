"""What every app's admin shares: read-only screens, the confirmation page of an operator's
action that moves money or seats, and deletes refused with a reason."""

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from django import forms
from django.contrib import admin
from django.contrib.admin.actions import delete_selected
from django.contrib.admin.utils import NestedObjects
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models, router
from django.forms.formsets import DELETION_FIELD_NAME
from django.shortcuts import render
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import Truncator, get_text_list
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _


class ReadOnlyAdmin(admin.ModelAdmin):
    """A record operators inspect but never type into: money and reservations change only
    through services (payment, refund, expiry), which keep the ledger and seats in step."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


def require_permission(allowed: bool) -> None:
    """The check of a confirmation view: an action's permission is asked again there, so a
    crafted POST gets no further than the action list would have let it."""
    if not allowed:
        raise PermissionDenied


# --- Confirming an action that moves money or seats -------------------------------------------


class ReasonForm(forms.Form):
    """The reason an operator gives for moving a customer's money or seats: kept in the
    admin history of every object the action touches."""

    reason = forms.CharField(
        label=_("Reason"),
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text=_("Kept in the history of everything this touches; the customer may be told."),
    )


# The most rows a confirmation table lists (a "select all" may pick thousands); its totals
# count every one.
CONFIRM_ROWS_SHOWN = 100


@dataclass
class ConfirmTable:
    """One table of a confirmation page: a row per object that would move."""

    headings: Sequence[str]
    rows: Sequence[Sequence[object]]
    caption: str = ""
    totals: Sequence[object] | None = None  # a last row, in bold
    more: int = 0  # rows left out for length
    empty: str = field(default_factory=lambda: gettext("Nothing here would move."))


def confirmation_page(
    model_admin: admin.ModelAdmin,
    request,
    *,
    title: str,
    intro: str,
    warning: str,
    tables: Sequence[ConfirmTable],
    form: forms.Form,
    selected: Sequence[object],
    action: str,
    confirm_label: str,
):
    """The page between an operator's choice of objects and the action: what would move
    (amounts, seats, customers), the form (a reason at least), and Go. Nothing moves before
    the POST that carries `confirmed`."""
    return render(
        request,
        "admin/operator_action_confirm.html",
        {
            **model_admin.admin_site.each_context(request),
            "opts": model_admin.model._meta,
            "title": title,
            "intro": intro,
            "warning": warning,
            "tables": tables,
            "form": form,
            "selected": selected,
            "action": action,
            "confirm_label": confirm_label,
        },
    )


# --- Deletes the books forbid -----------------------------------------------------------------


def protected_records(obj: models.Model) -> str:
    """What keeps `obj` from being deleted, as "2 reservations and 1 waitlist entry": the rows
    that refer to it (or to what its deletion would take along) with on_delete=PROTECT.
    Empty when nothing does."""
    collector = NestedObjects(using=router.db_for_write(type(obj)))
    collector.collect([obj])
    counts = Counter(type(row)._meta for row in collector.protected)
    return str(
        get_text_list(
            [
                f"{count} {ngettext(str(opts.verbose_name), str(opts.verbose_name_plural), count)}"
                for opts, count in sorted(counts.items(), key=lambda item: item[0].label)
            ],
            gettext("and"),
        )
    )


def protected_refusal(obj: models.Model) -> str:
    """Why `obj` cannot be deleted, from the rows that keep it; "" when none do."""
    records = protected_records(obj)
    if not records:
        return ""
    return gettext("“%(object)s” is referred to by %(records)s, which are kept.") % {
        "object": obj,
        "records": records,
    }


class ProtectedDeleteMixin:
    """A delete the database would refuse (rows kept for the customers and the books point
    at the object) is refused up front with a sentence saying why and what to do instead,
    on the delete page and in the "delete selected" action; never Django's list of
    protected objects or "your account doesn't have permission to delete … reservation"."""

    delete_confirmation_template = "admin/delete_refused.html"
    delete_selected_confirmation_template = "admin/delete_selected_refused.html"
    # What to do instead, shown under the reasons (e.g. "Unpublish it instead.").
    delete_refused_hint: str = ""

    def delete_refusal(self, obj: models.Model) -> str:
        """Why `obj` cannot be deleted, as a sentence naming it; "" when it can."""
        return protected_refusal(obj)

    def get_deleted_objects(self, objs, request):
        refusals = [refusal for obj in objs if (refusal := self.delete_refusal(obj))]
        if refusals:
            # Nothing is collected: the page says why, and the POST deletes nothing.
            return [], {}, set(), refusals
        return super().get_deleted_objects(objs, request)

    def render_delete_form(self, request, context):
        context["delete_refused_hint"] = self.delete_refused_hint
        return super().render_delete_form(request, context)

    def get_actions(self, request):
        actions = super().get_actions(request)
        if "delete_selected" in actions:
            _func, name, description = actions["delete_selected"]
            actions["delete_selected"] = (_delete_selected_explained, name, description)
        return actions


def _delete_selected_explained(model_admin, request, queryset):
    """Django's "delete selected", with the admin's hint on the page that refuses."""
    response = delete_selected(model_admin, request, queryset)
    if isinstance(response, TemplateResponse):
        response.context_data["delete_refused_hint"] = model_admin.delete_refused_hint
    return response


class ProtectedDeleteInlineMixin:
    """An inline's "Delete?" box on an object the books keep: the form says why, instead of
    Django's "would require deleting the following protected related objects". Set
    `delete_refusal` to a function of the object giving the sentence ("" when it may go)."""

    delete_refusal = staticmethod(lambda obj: "")

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        refusal_of = self.delete_refusal

        class RefusingForm(formset.form):
            def hand_clean_DELETE(self):
                if self.cleaned_data.get(DELETION_FIELD_NAME) and not self.instance._state.adding:
                    refusal = refusal_of(self.instance)
                    if refusal:
                        raise ValidationError(refusal, code="deleting_protected")
                super().hand_clean_DELETE()

        formset.form = RefusingForm
        return formset


# --- Narrow lists -----------------------------------------------------------------------------


def breakable_email(email: str) -> str:
    """An email address that may wrap before its "@": a long address is the widest word of
    most lists, and a table cell breaks only where its text allows."""
    local, at, domain = email.partition("@")
    if not at:
        return email
    return format_html("{}<wbr>@{}", local, domain)


def local_time(moment) -> str:
    """ "2026-12-24 19:00" in TIME_ZONE (Asia/Seoul): short, and free to wrap at the space
    (Django's own date columns never wrap)."""
    return f"{timezone.localtime(moment):%Y-%m-%d %H:%M}" if moment else "—"


def performance_label(schedule) -> str:
    """A performance in a list: its concert's title, shortened, and when it starts. (Its
    full name, with the artist, is on its page; a list column of it could not wrap.)"""
    return f"{Truncator(schedule.concert.title).chars(40)} · {local_time(schedule.starts_at)}"
