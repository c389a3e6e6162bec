from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count, Min, Q
from django.forms import formset_factory
from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import Truncator
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from config.admin import (
    CONFIRM_ROWS_SHOWN,
    ConfirmTable,
    ProtectedDeleteInlineMixin,
    ProtectedDeleteMixin,
    confirmation_page,
    local_time,
    performance_label,
    protected_refusal,
    require_permission,
)
from config.money import format_won
from payments.admin import REFUND_HEADINGS, REFUND_PERMISSION, refund_rows, refund_totals
from payments.cancellations import refund_job_create, refund_previews
from payments.forms import RefundForm
from payments.models import Payment
from reservations.models import Reservation, ReservationSeat, ReservationStatus, WaitlistEntry

from . import services
from .errors import SeatMapInvalid
from .models import (
    QUEUE_SETTINGS_FIELDS,
    CancellationPolicy,
    CancellationTier,
    Concert,
    Schedule,
    Seat,
    SeatStatus,
)
from .selectors import seat_free_q


class CatalogAdminMixin:
    """Operator edits reach the public catalog at once: its cache is invalidated on commit."""

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        services.catalog_changed()

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        services.catalog_changed()

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        services.catalog_changed()

    def delete_queryset(self, request, queryset):
        super().delete_queryset(request, queryset)
        services.catalog_changed()


def _with_seat_counts(queryset):
    now = timezone.now()
    return queryset.annotate(
        total_seats=Count("seats"),
        available_seats=Count("seats", filter=seat_free_q(now, prefix="seats__")),
        sold_seats=Count("seats", filter=Q(seats__status=SeatStatus.SOLD)),
    )


def _seat_summary(schedule: Schedule) -> str:
    if not schedule.pk:
        return "—"
    total = getattr(schedule, "total_seats", None)
    if total is None:
        return "—"
    return gettext("%(available)s available · %(sold)s sold · %(total)s total") % {
        "available": schedule.available_seats,
        "sold": schedule.sold_seats,
        "total": total,
    }


# --- Deletes the books forbid (config.admin.ProtectedDeleteMixin) ------------------------------


def _bookings_refusal(obj, reservations, waitlist_entries) -> str:
    """ "“X” has bookings: …" when reservations or waitlist entries of it exist; else what
    else keeps it (refund jobs), or ""."""
    bookings, waiting = reservations.count(), waitlist_entries.count()
    if not (bookings or waiting):
        return protected_refusal(obj)
    parts = []
    if bookings:
        parts.append(
            ngettext("%(count)s reservation", "%(count)s reservations", bookings)
            % {"count": bookings}
        )
    if waiting:
        parts.append(
            ngettext("%(count)s waitlist entry", "%(count)s waitlist entries", waiting)
            % {"count": waiting}
        )
    return gettext(
        "“%(object)s” has sales: %(bookings)s. Bookings, payments and refunds are kept for "
        "the customers and the books."
    ) % {"object": obj, "bookings": gettext(" and ").join(parts)}


def concert_delete_refusal(concert: Concert) -> str:
    return _bookings_refusal(
        concert,
        Reservation.objects.filter(schedule__concert=concert),
        WaitlistEntry.objects.filter(schedule__concert=concert),
    )


def schedule_delete_refusal(schedule: Schedule) -> str:
    return _bookings_refusal(
        schedule,
        Reservation.objects.filter(schedule=schedule),
        WaitlistEntry.objects.filter(schedule=schedule),
    )


def seat_delete_refusal(seat: Seat) -> str:
    if seat.status != SeatStatus.AVAILABLE:
        return gettext("“%(seat)s” of %(schedule)s is held or sold now.") % {
            "seat": seat,
            "schedule": seat.schedule,
        }
    booked = ReservationSeat.objects.filter(seat=seat).count()
    if booked:
        return ngettext(
            "“%(seat)s” of %(schedule)s was booked before: %(count)s booking keeps it in "
            "its record.",
            "“%(seat)s” of %(schedule)s was booked before: %(count)s bookings keep it in "
            "their records.",
            booked,
        ) % {"seat": seat, "schedule": seat.schedule, "count": booked}
    return ""


SCHEDULE_KEPT_HINT = _(
    "A performance with bookings stays. If it will not take place, refund its bookings "
    "(Schedules → select it → “Refund every paid booking of the selected performances…”); "
    "its records remain."
)


class ScheduleInline(ProtectedDeleteInlineMixin, admin.TabularInline):
    delete_refusal = staticmethod(schedule_delete_refusal)
    model = Schedule
    extra = 1
    fields = ["starts_at", "ends_at", "seats", "seat_map"]
    readonly_fields = ["seats", "seat_map"]
    show_change_link = True

    def get_queryset(self, request):
        return _with_seat_counts(super().get_queryset(request))

    @admin.display(description=_("Seats"))
    def seats(self, schedule: Schedule) -> str:
        return _seat_summary(schedule)

    @admin.display(description=_("Seat map"))
    def seat_map(self, schedule: Schedule) -> str:
        if not schedule.pk:
            return gettext("Save first, then generate the seat map.")
        url = reverse("admin:concerts_schedule_generate_seats", args=[schedule.pk])
        return format_html('<a href="{}">{}</a>', url, gettext("Generate seats"))


@admin.register(Concert)
class ConcertAdmin(ProtectedDeleteMixin, CatalogAdminMixin, admin.ModelAdmin):
    delete_refused_hint = _(
        "Hide it instead: select it in the list of concerts and choose “Unpublish selected "
        "concerts”. Customers no longer see it; its bookings stay as they are."
    )
    list_display = [
        "title",
        "artist",
        "venue",
        "is_published",
        "sale_opens_at",
        "schedule_count",
        "first_performance_at",
    ]
    list_filter = ["is_published", "sale_opens_at"]
    search_fields = ["title", "artist", "venue"]
    readonly_fields = ["created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["title", "artist", "venue", "description"]}),
        (
            "Sales",
            {
                "fields": [
                    "is_published",
                    "sale_opens_at",
                    "hold_minutes",
                    "ticket_limit",
                    "booking_fee",
                    "cancellation_policy",
                ]
            },
        ),
        (
            "Waitlist (취소표 대기)",
            {
                "fields": ["waitlist_enabled", "offer_minutes"],
                "description": "Who waits for what: Reservations → Waitlist entries.",
            },
        ),
        (
            "Waiting room",
            {
                "fields": QUEUE_SETTINGS_FIELDS,
                "classes": ["collapse"],
                "description": "Live numbers and pause/resume: Waiting room → Concert queues.",
            },
        ),
        ("History", {"fields": ["created_at", "updated_at"], "classes": ["collapse"]}),
    ]
    inlines = [ScheduleInline]
    actions = ["publish", "unpublish", "waitlist_on", "waitlist_off"]

    def delete_refusal(self, concert: Concert) -> str:
        return concert_delete_refusal(concert)

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                schedule_count=Count("schedules"), first_performance_at=Min("schedules__starts_at")
            )
        )

    @admin.display(description=_("Dates"), ordering="schedule_count")
    def schedule_count(self, concert: Concert) -> int:
        return concert.schedule_count

    @admin.display(description=_("First performance"), ordering="first_performance_at")
    def first_performance_at(self, concert: Concert):
        return concert.first_performance_at

    @admin.action(
        description=_("Publish selected concerts (show them to customers)"),
        permissions=["change"],
    )
    def publish(self, request, queryset):
        ids = list(queryset.values_list("id", flat=True))
        count = services.concert_set_published(concert_ids=ids, published=True)
        self.message_user(
            request, gettext("%(count)s concert(s) published.") % {"count": count}, messages.SUCCESS
        )

    @admin.action(
        description=_("Turn the waitlist on for the selected concerts"), permissions=["change"]
    )
    def waitlist_on(self, request, queryset):
        ids = list(queryset.values_list("id", flat=True))
        count = services.concert_set_waitlist(concert_ids=ids, enabled=True)
        self.message_user(
            request,
            gettext("Waitlist on for %(count)s concert(s).") % {"count": count},
            messages.SUCCESS,
        )

    @admin.action(
        description=_("Turn the waitlist off for the selected concerts"), permissions=["change"]
    )
    def waitlist_off(self, request, queryset):
        ids = list(queryset.values_list("id", flat=True))
        count = services.concert_set_waitlist(concert_ids=ids, enabled=False)
        self.message_user(
            request,
            gettext(
                "Waitlist off for %(count)s concert(s): nobody new joins; those waiting keep "
                "their place."
            )
            % {"count": count},
            messages.SUCCESS,
        )

    @admin.action(
        description=_("Unpublish selected concerts (hide them from customers)"),
        permissions=["change"],
    )
    def unpublish(self, request, queryset):
        ids = list(queryset.values_list("id", flat=True))
        count = services.concert_set_published(concert_ids=ids, published=False)
        self.message_user(
            request, gettext("%(count)s concert(s) hidden.") % {"count": count}, messages.SUCCESS
        )


def _performance_refund_row(schedule: Schedule, previews) -> tuple:
    return (
        schedule,
        len(previews),
        len({preview.customer for preview in previews}),
        sum(len(preview.seats) for preview in previews),
        format_won(sum(preview.paid - preview.refunded for preview in previews)),
        format_won(sum(preview.by_policy for preview in previews)),
        format_won(sum(preview.in_full for preview in previews)),
    )


class SeatBlockForm(forms.Form):
    section = forms.CharField(max_length=20, help_text=_("e.g. A, FLOOR, 2F-B"))
    grade = forms.CharField(max_length=20, help_text=_("e.g. VIP, R, S"))
    price = forms.IntegerField(min_value=1, max_value=100_000_000, label=_("Price (won)"))
    first_row = forms.IntegerField(min_value=1, max_value=999, initial=1)
    rows = forms.IntegerField(min_value=1, max_value=999)
    seats_per_row = forms.IntegerField(min_value=1, max_value=999)

    def clean_section(self) -> str:
        return self.cleaned_data["section"].strip()

    def clean_grade(self) -> str:
        return self.cleaned_data["grade"].strip()


SeatBlockFormSet = formset_factory(
    SeatBlockForm, extra=3, min_num=1, validate_min=True, max_num=50, validate_max=True
)


class SeatMapOptionsForm(forms.Form):
    replace = forms.BooleanField(
        required=False,
        label=_("Replace the current seat map"),
        help_text=_("Delete the schedule's seats first. Refused if any seat is held or sold."),
    )


@admin.register(Schedule)
class ScheduleAdmin(ProtectedDeleteMixin, CatalogAdminMixin, admin.ModelAdmin):
    delete_refused_hint = SCHEDULE_KEPT_HINT
    list_display = [
        "concert_name",
        "when",
        "total",
        "available",
        "sold",
        "seats_link",
        "waitlist_link",
    ]
    list_display_links = ["concert_name", "when"]
    # No date_hierarchy: it truncates dates in SQL with CONVERT_TZ, which needs MySQL's time
    # zone tables (absent on a fresh MariaDB and in the MySQL image). Range filters do not.
    list_filter = ["starts_at", "concert__is_published", "concert"]
    search_fields = ["concert__title", "concert__artist", "concert__venue"]
    list_select_related = ["concert"]
    autocomplete_fields = ["concert"]
    readonly_fields = ["seats_overview", "created_at", "updated_at"]
    fields = ["concert", "starts_at", "ends_at", "seats_overview", "created_at", "updated_at"]
    actions = ["generate_seat_map", "refund_performance"]
    change_form_template = "admin/concerts/schedule/change_form.html"

    def get_queryset(self, request):
        return _with_seat_counts(super().get_queryset(request))

    def delete_refusal(self, schedule: Schedule) -> str:
        return schedule_delete_refusal(schedule)

    @admin.display(description=_("Concert"), ordering="concert__title")
    def concert_name(self, schedule: Schedule) -> str:
        return Truncator(str(schedule.concert)).chars(70)

    @admin.display(description=_("When"), ordering="starts_at")
    def when(self, schedule: Schedule) -> str:
        ends = timezone.localtime(schedule.ends_at)
        same_day = ends.date() == timezone.localtime(schedule.starts_at).date()
        return (
            f"{local_time(schedule.starts_at)} – {ends:%H:%M}"
            if same_day
            else (f"{local_time(schedule.starts_at)} – {local_time(schedule.ends_at)}")
        )

    def has_refund_permission(self, request) -> bool:
        return request.user.has_perm(REFUND_PERMISSION)

    @admin.display(description=_("Seats"), ordering="total_seats")
    def total(self, schedule: Schedule) -> int:
        return schedule.total_seats

    @admin.display(description=_("Available"), ordering="available_seats")
    def available(self, schedule: Schedule) -> int:
        return schedule.available_seats

    @admin.display(description=_("Sold"), ordering="sold_seats")
    def sold(self, schedule: Schedule) -> int:
        return schedule.sold_seats

    @admin.display(description=_("Seat map"))
    def seats_link(self, schedule: Schedule) -> str:
        seats_url = (
            reverse("admin:concerts_seat_changelist") + f"?schedule__id__exact={schedule.pk}"
        )
        generate_url = reverse("admin:concerts_schedule_generate_seats", args=[schedule.pk])
        return format_html(
            '<a href="{}">{}</a> · <a href="{}">{}</a>',
            seats_url,
            gettext("Seats"),
            generate_url,
            gettext("Generate"),
        )

    @admin.display(description=_("Waitlist"))
    def waitlist_link(self, schedule: Schedule) -> str:
        url = reverse("admin:reservations_waitlistentry_changelist")
        return format_html(
            '<a href="{}?schedule__id__exact={}">{}</a>', url, schedule.pk, gettext("Waitlist")
        )

    @admin.display(description=_("Seats"))
    def seats_overview(self, schedule: Schedule) -> str:
        return _seat_summary(schedule)

    @admin.action(
        description=_("Refund every paid booking of the selected performances…"),
        permissions=["refund"],
    )
    def refund_performance(self, request, queryset):
        """The show is cancelled: every paid reservation refunded, as a job per performance
        (Payments → Refund jobs shows its progress). A confirmation page first: per
        performance the bookings, customers, seats and money, and the first bookings."""
        require_permission(self.has_refund_permission(request))
        schedules = list(queryset.select_related("concert").order_by("starts_at", "id"))
        form = RefundForm(request.POST if request.POST.get("confirmed") else None)
        if form.is_bound and form.is_valid():
            for schedule in schedules:
                # The job and its history line together; the job starts once both commit.
                with transaction.atomic():
                    job = refund_job_create(
                        schedule_id=schedule.id,
                        in_full=form.cleaned_data["mode"] == RefundForm.IN_FULL,
                        reason=form.cleaned_data["reason"],
                        operator=request.user,
                    )
                    self.log_change(
                        request,
                        schedule,
                        gettext(
                            "Refund job %(job)s (%(kind)s) for %(count)s booking(s): %(reason)s"
                        )
                        % {
                            "job": job.id,
                            "kind": job.get_kind_display(),
                            "count": job.total,
                            "reason": job.reason,
                        },
                    )
                url = reverse("admin:payments_refundjob_change", args=[job.pk])
                self.message_user(
                    request,
                    format_html(
                        gettext(
                            '{}: refunding {} paid booking(s); <a href="{}">follow the job</a>.'
                        ),
                        schedule,
                        job.total,
                        url,
                    ),
                    messages.SUCCESS,
                )
            return None
        previews = refund_previews(
            payments=Payment.objects.filter(
                reservation__schedule__in=schedules,
                reservation__status=ReservationStatus.CONFIRMED,
            )
        )
        return confirmation_page(
            self,
            request,
            title=gettext("Refund whole performances"),
            intro=gettext(
                "Refund every paid booking of these performances to the customers' wallets, "
                "one by one, in the background."
            ),
            warning=gettext("No money moves until you confirm below."),
            tables=[
                ConfirmTable(
                    caption=gettext("Per performance"),
                    headings=[
                        gettext("Performance"),
                        gettext("Paid bookings"),
                        gettext("Customers"),
                        gettext("Seats"),
                        gettext("Paid"),
                        gettext("Back by the policy"),
                        gettext("Back in full"),
                    ],
                    rows=[
                        _performance_refund_row(
                            schedule,
                            [p for p in previews if p.schedule_id == schedule.id and p.refundable],
                        )
                        for schedule in schedules
                    ],
                ),
                ConfirmTable(
                    caption=gettext("The bookings"),
                    headings=REFUND_HEADINGS,
                    rows=refund_rows(previews[:CONFIRM_ROWS_SHOWN]),
                    totals=refund_totals(previews),
                    more=max(0, len(previews) - CONFIRM_ROWS_SHOWN),
                    empty=gettext("No paid booking: nothing to refund."),
                ),
            ],
            form=form if form.is_bound else RefundForm(),
            selected=[schedule.id for schedule in schedules],
            action="refund_performance",
            confirm_label=gettext("Yes, refund them all"),
        )

    @admin.action(
        description=_("Generate a seat map for the selected schedules"), permissions=["change"]
    )
    def generate_seat_map(self, request, queryset):
        ids = ",".join(str(pk) for pk in queryset.order_by("pk").values_list("pk", flat=True))
        return HttpResponseRedirect(
            reverse("admin:concerts_schedule_generate_seats_many") + f"?ids={ids}"
        )

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path(
                "<int:schedule_id>/generate-seats/",
                view(self.generate_seats_view),
                name="concerts_schedule_generate_seats",
            ),
            path(
                "generate-seats/",
                view(self.generate_seats_view),
                name="concerts_schedule_generate_seats_many",
            ),
            *super().get_urls(),
        ]

    def generate_seats_view(self, request: HttpRequest, schedule_id: int | None = None):
        """One form for the whole seat map: blocks of sections x rows x seats, a price per grade."""
        if not (self.has_change_permission(request) and request.user.has_perm("concerts.add_seat")):
            raise PermissionDenied
        if schedule_id is not None:
            ids = [schedule_id]
        else:
            raw = request.GET.get("ids", "")
            ids = [int(part) for part in raw.split(",") if part.strip().isdigit()]
        schedules = list(self.get_queryset(request).filter(pk__in=ids).select_related("concert"))
        if not schedules:
            self.message_user(request, gettext("No schedule selected."), messages.WARNING)
            return HttpResponseRedirect(reverse("admin:concerts_schedule_changelist"))

        if request.method == "POST":
            formset = SeatBlockFormSet(request.POST, prefix="blocks")
            options = SeatMapOptionsForm(request.POST)
            if formset.is_valid() and options.is_valid():
                blocks = [
                    services.SeatBlock(**form.cleaned_data)
                    for form in formset
                    if form.cleaned_data and not form.cleaned_data.get("DELETE")
                ]
                try:
                    created = services.seat_map_generate(
                        schedule_ids=[schedule.pk for schedule in schedules],
                        blocks=blocks,
                        replace=options.cleaned_data["replace"],
                    )
                except SeatMapInvalid as error:
                    messages.error(request, error.message)
                else:
                    self.message_user(
                        request,
                        gettext("Created %(created)s seats for %(count)s schedule(s).")
                        % {"created": created, "count": len(schedules)},
                        messages.SUCCESS,
                    )
                    if len(schedules) == 1:
                        return HttpResponseRedirect(
                            reverse("admin:concerts_schedule_change", args=[schedules[0].pk])
                        )
                    return HttpResponseRedirect(reverse("admin:concerts_schedule_changelist"))
        else:
            formset = SeatBlockFormSet(prefix="blocks")
            options = SeatMapOptionsForm()

        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": gettext("Generate seat map"),
            "schedules": schedules,
            "formset": formset,
            "options": options,
        }
        return render(request, "admin/concerts/schedule/generate_seats.html", context)


class SeatForm(forms.ModelForm):
    class Meta:
        model = Seat
        fields = ["schedule", "section", "row", "number", "grade", "price"]

    def clean(self):
        cleaned = super().clean()
        if (
            self.instance.pk
            and not Seat.objects.filter(pk=self.instance.pk, status=SeatStatus.AVAILABLE).exists()
        ):
            raise forms.ValidationError(
                gettext("This seat is held or sold now; it cannot be edited.")
            )
        return cleaned


@admin.register(Seat)
class SeatAdmin(ProtectedDeleteMixin, CatalogAdminMixin, admin.ModelAdmin):
    delete_refused_hint = _(
        "A seat that is or was booked stays: its bookings' records name it. Reprice it, or "
        "leave it."
    )
    form = SeatForm
    list_display = ["seat", "performance", "grade", "price_won", "status", "hold_ends"]
    list_filter = ["status", "grade", "schedule__concert"]
    search_fields = ["section", "grade", "schedule__concert__title"]
    list_select_related = ["schedule__concert"]
    list_per_page = 100
    show_full_result_count = False  # counting a big seat table on every page costs a scan
    raw_id_fields = ["schedule"]

    def get_fields(self, request, obj=None):
        fields = ["schedule", "section", "row", "number", "grade", "price"]
        return fields if obj is None else [*fields, "status", "hold_expires_at", "reservation"]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        # Where a seat is is fixed once it exists; held or sold seats belong to customers and
        # change only through holds, payment and refunds.
        readonly = [
            "schedule",
            "section",
            "row",
            "number",
            "status",
            "hold_expires_at",
            "reservation",
        ]
        if obj.status != SeatStatus.AVAILABLE:
            readonly += ["grade", "price"]
        return readonly

    def save_model(self, request, obj, form, change):
        if not change:
            super().save_model(request, obj, form, change)
            return
        # Never obj.save(): it would write back every column as read before the edit.
        try:
            services.seat_reprice(seat_id=obj.pk, grade=obj.grade, price=obj.price)
        except SeatMapInvalid as error:
            self.message_user(request, error.message, messages.ERROR)

    def save_related(self, request, form, formsets, change):
        pass  # a seat has no inlines; and nothing else may be written on its behalf

    @admin.display(description=_("Seat"), ordering="section")
    def seat(self, seat: Seat) -> str:
        return gettext("%(section)s · row %(row)s · %(number)s") % {
            "section": seat.section,
            "row": seat.row,
            "number": seat.number,
        }

    @admin.display(description=_("Performance"), ordering="schedule__starts_at")
    def performance(self, seat: Seat) -> str:
        return performance_label(seat.schedule)

    @admin.display(description=_("Hold ends"), ordering="hold_expires_at")
    def hold_ends(self, seat: Seat) -> str:
        return local_time(seat.hold_expires_at) if seat.hold_expires_at else "—"

    @admin.display(description=_("Price"), ordering="price")
    def price_won(self, seat: Seat) -> str:
        return format_won(seat.price)

    def delete_refusal(self, seat: Seat) -> str:
        return seat_delete_refusal(seat)


class CancellationTierInlineFormSet(forms.BaseInlineFormSet):
    def clean(self):
        """Tiers may not overlap: each day before the show has at most one fee."""
        super().clean()
        ranges = sorted(
            (form.cleaned_data["min_days_before"], form.cleaned_data.get("max_days_before"))
            for form in self.forms
            if form.cleaned_data
            and not form.cleaned_data.get("DELETE")
            and form.cleaned_data.get("min_days_before") is not None
        )
        for (low, high), (next_low, _next_high) in zip(ranges, ranges[1:], strict=False):
            if high is None or high >= next_low:
                raise forms.ValidationError(
                    gettext("The tier from D-%(low)s overlaps the tier from D-%(next)s.")
                    % {"low": low, "next": next_low}
                )


class CancellationTierInline(admin.TabularInline):
    model = CancellationTier
    formset = CancellationTierInlineFormSet
    extra = 0
    fields = ["min_days_before", "max_days_before", "percent", "flat_won", "cap_percent"]


@admin.register(CancellationPolicy)
class CancellationPolicyAdmin(ProtectedDeleteMixin, admin.ModelAdmin):
    """Cancellation fees as data: a free window after payment, fee tiers by days before the
    show, a cut-off. Days before the show count calendar days in Asia/Seoul: D-1 is the day
    before the show."""

    list_display = ["name", "free_window_days", "cutoff_days_before", "cutoff_time", "concerts"]
    fields = [
        "name",
        "free_window_days",
        "free_window_min_days_before",
        "cutoff_days_before",
        "cutoff_time",
    ]
    inlines = [CancellationTierInline]
    delete_refused_hint = _("Give those concerts another cancellation policy first.")

    @admin.display(description=_("Concerts using it"))
    def concerts(self, policy: CancellationPolicy) -> int:
        return policy.concerts.count()

    def delete_refusal(self, policy: CancellationPolicy) -> str:
        used = policy.concerts.count()
        if not used:
            return ""
        return ngettext(
            "“%(policy)s” is the cancellation policy of %(count)s concert.",
            "“%(policy)s” is the cancellation policy of %(count)s concerts.",
            used,
        ) % {"policy": policy, "count": used}
