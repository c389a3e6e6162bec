from django.contrib import admin, messages
from django.db.models import Prefetch
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from concerts.models import Schedule
from config.admin import (
    CONFIRM_ROWS_SHOWN,
    ConfirmTable,
    ReadOnlyAdmin,
    ReadOnlyInline,
    ReasonForm,
    breakable_email,
    confirmation_page,
    local_time,
    performance_label,
    require_permission,
)
from config.errors import DomainError
from config.money import format_won

from . import waitlist
from .models import (
    LIVE_WAITLIST_STATUSES,
    Reservation,
    ReservationSeat,
    ReservationStatus,
    WaitlistEntry,
    WaitlistEvent,
)
from .selectors import (
    reservation_effective_status,
    waitlist_entry_effective_status,
    waitlist_numbers,
    waitlist_places,
)
from .services import reservation_release_by_operator

# Releasing holds and taking customers off the waitlist: seats move, no money does.
RELEASE_PERMISSION = "reservations.release_hold"


class ReservationSeatInline(ReadOnlyInline):
    model = ReservationSeat
    fields = ["seat", "price_won", "cancelled_at"]
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("seat")

    @admin.display(description=_("Price"))
    def price_won(self, item: ReservationSeat) -> str:
        return format_won(item.price)


@admin.register(Reservation)
class ReservationAdmin(ReadOnlyAdmin):
    # Kept to what fits a laptop's screen beside the filters; the source (hold or waitlist
    # offer) is a filter and on the reservation's page.
    list_display = [
        "id",
        "customer",
        "performance",
        "status_now",
        "total",
        "hold_ends",
        "created",
    ]
    list_filter = ["status", "source", "schedule__concert", "created_at"]
    search_fields = ["id", "user__email", "schedule__concert__title"]
    list_select_related = ["user", "schedule__concert"]
    readonly_fields = [
        "user",
        "schedule",
        "status_now",
        "source",
        "total",
        "hold_ends",
        "created_at",
        "updated_at",
    ]
    inlines = [ReservationSeatInline]
    actions = ["release_holds"]
    show_full_result_count = False

    def get_fields(self, request, obj=None):
        fields = list(self.readonly_fields)
        if obj is not None and obj.status not in (
            ReservationStatus.HELD,
            ReservationStatus.EXPIRED,
        ):
            fields.remove("hold_ends")  # a paid or ended booking has no hold to end
        return fields

    def has_release_hold_permission(self, request) -> bool:
        return request.user.has_perm(RELEASE_PERMISSION)

    @admin.display(description=_("Customer"), ordering="user__email")
    def customer(self, reservation: Reservation) -> str:
        return breakable_email(reservation.user.email)

    @admin.display(description=_("Performance"), ordering="schedule__starts_at")
    def performance(self, reservation: Reservation) -> str:
        return performance_label(reservation.schedule)

    @admin.display(description=_("Created"), ordering="created_at")
    def created(self, reservation: Reservation) -> str:
        return local_time(reservation.created_at)

    @admin.display(description=_("Status"), ordering="status")
    def status_now(self, reservation: Reservation) -> str:
        return ReservationStatus(reservation_effective_status(reservation, timezone.now())).label

    @admin.display(description=_("Total"), ordering="total_price")
    def total(self, reservation: Reservation) -> str:
        return format_won(reservation.total_price)

    @admin.display(description=_("Hold ends"), ordering="expires_at")
    def hold_ends(self, reservation: Reservation) -> str:
        """Only a hold has an end: a paid, cancelled or refunded booking shows none."""
        if reservation.status not in (ReservationStatus.HELD, ReservationStatus.EXPIRED):
            return "—"
        return local_time(reservation.expires_at)

    @admin.action(
        description=_("Release the selected holds (seats back on sale)…"),
        permissions=["release_hold"],
    )
    def release_holds(self, request, queryset):
        """A customer's hold is stuck, or they asked on the phone: a confirmation page lists
        the holds, their seats and customers, asks why, and only then lets them go, each as
        the customer's own cancel would (a waitlist offer counts as declined)."""
        require_permission(self.has_release_hold_permission(request))
        now = timezone.now()
        holds = [
            reservation
            for reservation in queryset.select_related("user", "schedule__concert")
            .prefetch_related(
                Prefetch("items", queryset=ReservationSeat.objects.select_related("seat"))
            )
            .order_by("id")
            if reservation_effective_status(reservation, now) == ReservationStatus.HELD
        ]
        if not holds:
            self.message_user(
                request,
                gettext("None of the selected reservations is a live hold: nothing to release."),
                messages.WARNING,
            )
            return None
        form = ReasonForm(request.POST if request.POST.get("confirmed") else None)
        if form.is_bound and form.is_valid():
            return self._release_confirmed(request, holds, form.cleaned_data["reason"])
        selected = queryset.count()
        customers = len({hold.user_id for hold in holds})
        seats = sum(len(hold.items.all()) for hold in holds)
        return confirmation_page(
            self,
            request,
            title=gettext("Release holds"),
            intro=ngettext(
                "Release %(count)s hold of the %(selected)s selected reservations.",
                "Release %(count)s holds of the %(selected)s selected reservations.",
                len(holds),
            )
            % {"count": len(holds), "selected": selected},
            warning=gettext(
                "Their seats go to the performance's waitlist, or back on sale; the customers "
                "keep nothing. No seat moves until you confirm below."
            ),
            tables=[
                ConfirmTable(
                    headings=[
                        gettext("Reservation"),
                        gettext("Customer"),
                        gettext("Performance"),
                        gettext("Seats"),
                        gettext("Kind"),
                        gettext("Hold ends"),
                    ],
                    rows=[
                        (
                            hold.id,
                            breakable_email(hold.user.email),
                            hold.schedule,
                            ", ".join(str(item) for item in hold.items.all()),
                            hold.get_source_display(),
                            local_time(hold.expires_at),
                        )
                        for hold in holds[:CONFIRM_ROWS_SHOWN]
                    ],
                    more=max(0, len(holds) - CONFIRM_ROWS_SHOWN),
                    totals=(
                        gettext("Total"),
                        ngettext("%(count)s customer", "%(count)s customers", customers)
                        % {"count": customers},
                        "",
                        ngettext("%(count)s seat", "%(count)s seats", seats) % {"count": seats},
                        "",
                        "",
                    ),
                )
            ],
            form=form if form.is_bound else ReasonForm(),
            selected=[hold.id for hold in holds],
            action="release_holds",
            confirm_label=gettext("Yes, release them"),
        )

    def _release_confirmed(self, request, holds, reason):
        """Each hold in its own transaction with its history line (the service's): a hold
        paid or lapsed since the page was shown is said so, and nothing of it moves."""
        released = 0
        for hold in holds:
            try:
                reservation_release_by_operator(
                    reservation_id=hold.id, operator=request.user, reason=reason
                )
            except DomainError as error:
                self.message_user(
                    request,
                    gettext("Reservation %(id)s: %(problem)s")
                    % {"id": hold.id, "problem": error.message},
                    messages.ERROR,
                )
                continue
            released += 1
        self.message_user(
            request,
            gettext("Released %(released)s of %(count)s hold(s).")
            % {"released": released, "count": len(holds)},
            messages.SUCCESS if released == len(holds) else messages.WARNING,
        )


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
        "customer",
        "performance",
        "wants",
        "status_now",
        "place",
        "joined",
        "offer_link",
    ]
    list_filter = ["status", "schedule__concert", "schedule", "auto_pay"]
    search_fields = ["=id", "user__email", "schedule__concert__title"]
    list_select_related = ["user", "schedule__concert", "offer"]
    ordering = ["schedule", "joined_at", "id"]
    fields = [
        "user",
        "schedule",
        "wants",
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

    def has_release_hold_permission(self, request) -> bool:
        return request.user.has_perm(RELEASE_PERMISSION)

    @admin.display(description=_("Customer"), ordering="user__email")
    def customer(self, entry: WaitlistEntry) -> str:
        return breakable_email(entry.user.email)

    @admin.display(description=_("Performance"), ordering="schedule__starts_at")
    def performance(self, entry: WaitlistEntry) -> str:
        return performance_label(entry.schedule)

    @admin.display(description=_("Joined"), ordering="joined_at")
    def joined(self, entry: WaitlistEntry) -> str:
        return local_time(entry.joined_at)

    @admin.display(description=_("Wants"))
    def wants(self, entry: WaitlistEntry) -> str:
        grades = ", ".join(entry.grades) if entry.grades else gettext("any grade")
        return f"{entry.quantity} × {grades}"

    @admin.display(description=_("Status"), ordering="status")
    def status_now(self, entry: WaitlistEntry) -> str:
        return waitlist_entry_effective_status(entry, timezone.now())

    @admin.display(description=_("Place in line"))
    def place(self, entry: WaitlistEntry) -> str:
        places = waitlist_places(entry)
        return ", ".join(f"{grade} #{n}" for grade, n in places.items()) or "—"

    @admin.display(description=_("Offer"))
    def offer_link(self, entry: WaitlistEntry) -> str:
        if entry.offer_id is None:
            return "—"
        url = reverse("admin:reservations_reservation_change", args=[entry.offer_id])
        return format_html('<a href="{}">{}</a>', url, entry.offer_id)

    def changelist_view(self, request, extra_context=None):
        schedule_id = request.GET.get("schedule__id__exact")
        schedule = Schedule.objects.filter(id=schedule_id).first() if schedule_id else None
        extra_context = {
            **(extra_context or {}),
            "waitlist_schedule": schedule,
            "waitlist_numbers": waitlist_numbers(schedule_id=schedule.id if schedule else None),
        }
        return super().changelist_view(request, extra_context)

    @admin.action(
        description=_("Take the selected customers off the waitlist (offers declined)…"),
        permissions=["release_hold"],
    )
    def remove_from_waitlist(self, request, queryset):
        """A confirmation page (who, what they wait for, the seats of an offer they hold)
        with a reason; then each entry ends as if its customer had left."""
        require_permission(self.has_release_hold_permission(request))
        entries = list(
            queryset.filter(status__in=LIVE_WAITLIST_STATUSES)
            .select_related("user", "schedule__concert", "offer")
            .order_by("id")
        )
        if not entries:
            self.message_user(
                request,
                gettext("None of the selected customers is on the waitlist now."),
                messages.WARNING,
            )
            return None
        form = ReasonForm(request.POST if request.POST.get("confirmed") else None)
        if form.is_bound and form.is_valid():
            return self._remove_confirmed(request, entries, form.cleaned_data["reason"])
        offer_seats = {}
        for item in ReservationSeat.objects.filter(
            reservation_id__in=[entry.offer_id for entry in entries if entry.offer_id],
            reservation__status=ReservationStatus.HELD,
        ).select_related("seat"):
            offer_seats.setdefault(item.reservation_id, []).append(str(item))
        return confirmation_page(
            self,
            request,
            title=gettext("Take customers off the waitlist"),
            intro=ngettext(
                "Take %(count)s customer off the waitlist.",
                "Take %(count)s customers off the waitlist.",
                len(entries),
            )
            % {"count": len(entries)},
            warning=gettext(
                "Seats they were offered go to the next in line, or back on sale. Nothing "
                "moves until you confirm below."
            ),
            tables=[
                ConfirmTable(
                    headings=[
                        gettext("Entry"),
                        gettext("Customer"),
                        gettext("Performance"),
                        gettext("Wants"),
                        gettext("Status"),
                        gettext("Seats offered"),
                    ],
                    rows=[
                        (
                            entry.id,
                            breakable_email(entry.user.email),
                            entry.schedule,
                            self.wants(entry),
                            entry.get_status_display(),
                            ", ".join(offer_seats.get(entry.offer_id, [])) or "—",
                        )
                        for entry in entries[:CONFIRM_ROWS_SHOWN]
                    ],
                    more=max(0, len(entries) - CONFIRM_ROWS_SHOWN),
                )
            ],
            form=form if form.is_bound else ReasonForm(),
            selected=[entry.id for entry in entries],
            action="remove_from_waitlist",
            confirm_label=gettext("Yes, take them off"),
        )

    def _remove_confirmed(self, request, entries, reason):
        removed = 0
        for entry in entries:
            try:
                waitlist.waitlist_remove_by_operator(
                    entry_id=entry.id, operator=request.user, reason=reason
                )
            except DomainError as error:
                self.message_user(
                    request,
                    gettext("Entry %(id)s: %(problem)s")
                    % {"id": entry.id, "problem": error.message},
                    messages.ERROR,
                )
                continue
            removed += 1
        self.message_user(
            request,
            gettext("%(count)s entries taken off the waitlist.") % {"count": removed},
            messages.SUCCESS,
        )

    @admin.action(
        description=_("Offer seats on sale to the selected entries' lines now"),
        permissions=["release_hold"],
    )
    def hand_on_now(self, request, queryset):
        """Seats on sale while customers wait for them (they came back before anyone waited,
        or the waitlist was off): offered to the line now, oldest first."""
        require_permission(self.has_release_hold_permission(request))
        schedules = list(
            Schedule.objects.filter(
                id__in=queryset.values_list("schedule_id", flat=True).distinct()
            ).select_related("concert")
        )
        made = waitlist.waitlist_hand_on_now(schedule_ids=[schedule.id for schedule in schedules])
        for schedule in schedules:
            self.log_change(
                request,
                schedule,
                gettext("Seats on sale offered to the waitlist now (%(made)s offers in all).")
                % {"made": made},
            )
        self.message_user(
            request, gettext("%(made)s offers made.") % {"made": made}, messages.SUCCESS
        )
