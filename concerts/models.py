from datetime import time

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

POSITIVE_SETTINGS = (
    "queue_max_active",
    "queue_admit_per_minute",
    "queue_admitted_minutes",
    "queue_abandon_after_seconds",
    "queue_claim_seconds",
    "queue_shopping_seconds",
    "hold_minutes",
    "ticket_limit",
    "offer_minutes",
)
AT_LEAST_ONE = [MinValueValidator(1)]
# What an operator reads when a setting breaks its CHECK constraint (the field validators
# usually say it first; these are the database's own words, made readable).
POSITIVE_SETTING_MESSAGES = {
    "queue_max_active": _("Customers shopping at once must be at least 1."),
    "queue_admit_per_minute": _("Admissions per minute must be at least 1."),
    "queue_admitted_minutes": _("The admitted session must last at least 1 minute."),
    "queue_abandon_after_seconds": _("Abandon after must be at least 1 second."),
    "queue_claim_seconds": _("The claim window must be at least 1 second."),
    "queue_shopping_seconds": _("The usual shopping time must be at least 1 second, or empty."),
    "hold_minutes": _("A hold must last at least 1 minute."),
    "ticket_limit": _("Tickets per customer and performance must be at least 1."),
    "offer_minutes": _("A waitlist offer must last at least 1 minute."),
}

# The cancellation fees of Korean ticket sites (the Fair Trade Commission's standard terms for
# performances): free within 7 days of payment while the show is 10 or more days away; from
# D-10 on ₩4,000 a ticket (at most 10 % of its price), D-9 to D-7 10 %, D-6 to D-3 20 %,
# D-2 to D-1 30 %; nothing after 17:00 the day before the show. Data, not code: operators edit
# it in admin or give a concert another policy.
STANDARD_CANCELLATION_POLICY = {
    "name": "Korean standard (공연 표준 취소수수료)",
    "free_window_days": 7,
    "free_window_min_days_before": 10,
    "cutoff_days_before": 1,
    "cutoff_time": time(17, 0),
    "tiers": [
        {"min_days_before": 10, "max_days_before": None, "flat_won": 4_000, "cap_percent": 10},
        {"min_days_before": 7, "max_days_before": 9, "percent": 10},
        {"min_days_before": 3, "max_days_before": 6, "percent": 20},
        {"min_days_before": 1, "max_days_before": 2, "percent": 30},
    ],
}


def standard_cancellation_policy_id() -> int:
    """The id of the standard policy, every concert's default; made on first use, so that it
    exists whatever emptied the table (a test's flush)."""
    definition = dict(STANDARD_CANCELLATION_POLICY)
    tiers = definition.pop("tiers")
    policy, created = CancellationPolicy.objects.get_or_create(
        name=definition.pop("name"), defaults=definition
    )
    if created:
        CancellationTier.objects.bulk_create(
            CancellationTier(policy=policy, **tier) for tier in tiers
        )
    return policy.id


# The waiting room's settings, as operators edit them (concert admin and the queue panel).
QUEUE_SETTINGS_FIELDS = [
    "queue_paused",
    "queue_max_active",
    "queue_admit_per_minute",
    "queue_admitted_minutes",
    "queue_abandon_after_seconds",
    "queue_claim_seconds",
    "queue_shopping_seconds",
]


class Concert(models.Model):
    title = models.CharField(_("title"), max_length=200)
    artist = models.CharField(_("artist"), max_length=200)
    venue = models.CharField(_("venue"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    is_published = models.BooleanField(
        _("is published"),
        default=False,
        help_text=_("Only published concerts are shown to customers."),
    )
    sale_opens_at = models.DateTimeField(
        _("sale opens at"),
        null=True,
        blank=True,
        help_text=_("When tickets go on sale. Empty: not announced yet."),
    )
    # The waiting room (queueing app). Settings live here, state lives in Redis.
    queue_max_active = models.PositiveIntegerField(
        _("customers shopping at once"),
        default=100,
        validators=AT_LEAST_ONE,
        help_text=_("How many admitted customers may view seats and hold at the same time."),
    )
    queue_admit_per_minute = models.PositiveIntegerField(
        _("admissions per minute"),
        default=300,
        validators=AT_LEAST_ONE,
        help_text=_("The most customers let in a minute."),
    )
    queue_admitted_minutes = models.PositiveIntegerField(
        _("admitted session (minutes)"),
        default=10,
        validators=AT_LEAST_ONE,
        help_text=_("How long an admitted customer may shop before the slot goes to the next."),
    )
    queue_abandon_after_seconds = models.PositiveIntegerField(
        _("abandon after (seconds)"),
        default=300,
        validators=AT_LEAST_ONE,
        help_text=_("A waiting customer who stops polling this long loses their place."),
    )
    queue_claim_seconds = models.PositiveIntegerField(
        _("claim window (seconds)"),
        default=30,
        validators=AT_LEAST_ONE,
        help_text=_(
            "An admitted customer who neither polls nor views seats this long after they "
            "were told to look again loses the slot to the next in line."
        ),
    )
    queue_shopping_seconds = models.PositiveIntegerField(
        _("usual shopping time (seconds)"),
        null=True,
        blank=True,
        validators=AT_LEAST_ONE,
        help_text=_(
            "How long an admitted customer usually shops, from admission to paying or "
            "leaving: where the waiting customers' ETA starts, until this sale's own sessions "
            "show it. Take it from the last sale (the queue panel shows it). Empty: 70 percent "
            "of the admitted session, which is cautious."
        ),
    )
    queue_paused = models.BooleanField(
        _("admission paused"), default=False, help_text=_("Nobody new is let in while paused.")
    )
    hold_minutes = models.PositiveIntegerField(
        _("hold minutes"),
        default=5,
        validators=AT_LEAST_ONE,
        help_text=_("How long held seats wait for payment before going back on sale."),
    )
    ticket_limit = models.PositiveSmallIntegerField(
        _("tickets per customer and performance"),
        default=4,
        validators=AT_LEAST_ONE,
        help_text=_(
            "The most seats one customer may hold and own of one performance, counted "
            "across all their bookings."
        ),
    )
    booking_fee = models.PositiveIntegerField(
        _("booking fee (won per ticket)"),
        default=2_000,
        help_text=_(
            "예매수수료, charged per ticket with the payment and shown apart from the "
            "price. Refunded only when a booking is cancelled on the day it was paid. 0: none."
        ),
    )
    cancellation_policy = models.ForeignKey(
        "CancellationPolicy",
        verbose_name=_("cancellation policy"),
        on_delete=models.PROTECT,
        related_name="concerts",
        default=standard_cancellation_policy_id,
        help_text=_("The fees customers pay to cancel a paid booking, by days before the show."),
    )
    # The 취소표 waitlist (reservations/waitlist.py): seats that come back after a sell-out
    # go to the customers waiting for them, in order, as offers held for offer_minutes.
    waitlist_enabled = models.BooleanField(
        _("waitlist on"),
        default=True,
        help_text=_(
            "Customers may wait for returned seats of a sold-out performance. Turning "
            "it off stops new entries; entries already waiting keep their place."
        ),
    )
    offer_minutes = models.PositiveIntegerField(
        _("waitlist offer (minutes)"),
        default=30,
        validators=AT_LEAST_ONE,
        help_text=_("How long returned seats offered to a waiting customer stay theirs to pay."),
    )
    # When the sale's opening was told to the world (the sale.opened event): once per concert.
    sale_opened_at = models.DateTimeField(
        _("sale opened at"), null=True, blank=True, editable=False
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("concert")
        verbose_name_plural = _("concerts")
        ordering = ["id"]
        indexes = [models.Index(fields=["is_published", "id"])]
        # One constraint per field: a ModelForm validates only the constraints whose fields
        # are all on the form, and the queue panel shows some of these fields, not all.
        constraints = [
            models.CheckConstraint(
                condition=Q(**{f"{name}__gt": 0}),
                name=f"concert_{name}_positive",
                violation_error_code="not_positive",
                violation_error_message=POSITIVE_SETTING_MESSAGES[name],
            )
            for name in POSITIVE_SETTINGS
        ]

    def __str__(self) -> str:
        return f"{self.artist} — {self.title}" if self.artist else self.title


SCHEDULE_ENDS_BEFORE_START = _("The performance must end after it starts.")


class Schedule(models.Model):
    """One performance of a concert: a date and time with its own seat map."""

    concert = models.ForeignKey(
        Concert, verbose_name=_("concert"), on_delete=models.CASCADE, related_name="schedules"
    )
    starts_at = models.DateTimeField(_("starts at"))
    ends_at = models.DateTimeField(_("ends at"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("schedule")
        verbose_name_plural = _("schedules")
        ordering = ["starts_at", "id"]
        indexes = [models.Index(fields=["concert", "starts_at"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__gt=F("starts_at")),
                name="schedule_ends_after_start",
                violation_error_code="ends_before_start",
                violation_error_message=SCHEDULE_ENDS_BEFORE_START,
            ),
        ]

    def clean(self):
        """The constraint's sentence on the field it is about (the database checks it too)."""
        super().clean()
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValidationError(
                {"ends_at": ValidationError(SCHEDULE_ENDS_BEFORE_START, code="ends_before_start")}
            )

    def __str__(self) -> str:
        if self.starts_at is None:
            return str(self.concert)
        return f"{self.concert} @ {timezone.localtime(self.starts_at):%Y-%m-%d %H:%M}"


class SeatStatus(models.TextChoices):
    AVAILABLE = "available", _("Available")
    HELD = "held", _("Held")
    SOLD = "sold", _("Sold")


SEAT_PRICE_NOT_POSITIVE = _("A seat costs at least ₩1.")


class Seat(models.Model):
    """A seat of one performance. Price is in won (KRW), an integer: money is never a float."""

    schedule = models.ForeignKey(
        Schedule, verbose_name=_("schedule"), on_delete=models.CASCADE, related_name="seats"
    )
    section = models.CharField(_("section"), max_length=20)
    row = models.PositiveSmallIntegerField(_("row"))
    number = models.PositiveSmallIntegerField(_("number"))
    grade = models.CharField(_("grade"), max_length=20, help_text=_("Price class, e.g. VIP, R, S."))
    price = models.PositiveIntegerField(_("price"), help_text=_("Won (KRW)."))
    status = models.CharField(
        _("status"), max_length=10, choices=SeatStatus.choices, default=SeatStatus.AVAILABLE
    )
    # Set while held. A hold past this instant counts as free everywhere, before any sweep runs.
    hold_expires_at = models.DateTimeField(_("hold expires at"), null=True, blank=True)
    # The reservation holding or owning the seat now. One column, so the database itself
    # keeps a seat from belonging to two reservations at once.
    reservation = models.ForeignKey(
        "reservations.Reservation",
        verbose_name=_("reservation"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="current_seats",
    )

    class Meta:
        verbose_name = _("seat")
        verbose_name_plural = _("seats")
        ordering = ["section", "row", "number"]
        indexes = [models.Index(fields=["schedule", "status"])]
        constraints = [
            models.UniqueConstraint(
                fields=["schedule", "section", "row", "number"],
                name="seat_unique_per_schedule",
                violation_error_code="seat_exists",
                violation_error_message=_(
                    "This performance already has a seat with this section, row and number."
                ),
            ),
            models.CheckConstraint(
                condition=Q(price__gt=0),
                name="seat_price_positive",
                violation_error_code="price_not_positive",
                violation_error_message=SEAT_PRICE_NOT_POSITIVE,
            ),
            models.CheckConstraint(
                condition=Q(row__gt=0) & Q(number__gt=0),
                name="seat_row_and_number_positive",
                violation_error_code="row_or_number_not_positive",
                violation_error_message=_("Row and seat number start at 1."),
            ),
            models.CheckConstraint(
                condition=Q(status__in=SeatStatus.values),
                name="seat_status_valid",
                violation_error_code="invalid_status",
                violation_error_message=_("A seat is available, held or sold; nothing else."),
            ),
            models.CheckConstraint(
                condition=Q(status=SeatStatus.HELD, hold_expires_at__isnull=False)
                | (~Q(status=SeatStatus.HELD) & Q(hold_expires_at__isnull=True)),
                name="seat_hold_expiry_iff_held",
                violation_error_code="hold_expiry_mismatch",
                violation_error_message=_(
                    "A held seat needs the end of its hold, and only a held seat has one."
                ),
            ),
            models.CheckConstraint(
                condition=Q(status=SeatStatus.AVAILABLE, reservation__isnull=True)
                | (~Q(status=SeatStatus.AVAILABLE) & Q(reservation__isnull=False)),
                name="seat_reservation_iff_taken",
                violation_error_code="holder_mismatch",
                violation_error_message=_(
                    "A held or sold seat belongs to a reservation; an available one to none."
                ),
            ),
        ]

    def clean(self):
        super().clean()
        errors = {}
        if self.price is not None and self.price <= 0:
            errors["price"] = ValidationError(SEAT_PRICE_NOT_POSITIVE, code="price_not_positive")
        for name in ("row", "number"):
            if getattr(self, name) is not None and getattr(self, name) <= 0:
                errors[name] = ValidationError(
                    _("Rows and seat numbers start at 1."), code="row_or_number_not_positive"
                )
        if errors:
            raise ValidationError(errors)

    def __str__(self) -> str:
        return f"{self.section}-{self.row}-{self.number}"


class CancellationPolicy(models.Model):
    """What cancelling a paid booking costs, written as data: a free window after payment,
    fee tiers by days before the show, and a cut-off after which nothing can be cancelled.

    Days before the show ("D") count calendar days in TIME_ZONE (Asia/Seoul) from the day of
    the cancellation to the day of the show: the day before the show is D-1. The fee is per
    ticket, a percentage of its price (rounded down to the won) or a flat amount capped at a
    percentage of the price. payments.cancellation computes quotes from it."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    free_window_days = models.PositiveSmallIntegerField(
        _("free within (days after payment)"),
        default=7,
        help_text=_("No cancellation fee up to this many days after the day of payment..."),
    )
    free_window_min_days_before = models.PositiveSmallIntegerField(
        _("...while the show is at least (days away)"),
        default=10,
        help_text=_("...as long as the show is at least this many days away (D-10 or earlier)."),
    )
    cutoff_days_before = models.PositiveSmallIntegerField(
        _("cut-off day (days before the show)"),
        default=1,
        help_text=_(
            "Nothing can be cancelled after the cut-off time on this day (1: the day "
            "before the show), nor on any later day."
        ),
    )
    cutoff_time = models.TimeField(_("cut-off time"), default=time(17, 0))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("cancellation policy")
        verbose_name_plural = _("cancellation policies")

    def __str__(self) -> str:
        return self.name


TIER_RANGE_REVERSED = _("“To D-” must be at least “from D-”, e.g. from D-7 to D-9.")


class CancellationTier(models.Model):
    """The fee per ticket for cancellations from `min_days_before` to `max_days_before` (both
    included; no maximum: any day further away)."""

    policy = models.ForeignKey(
        CancellationPolicy, verbose_name=_("policy"), on_delete=models.CASCADE, related_name="tiers"
    )
    min_days_before = models.PositiveSmallIntegerField(_("from D-"))
    max_days_before = models.PositiveSmallIntegerField(_("to D-"), null=True, blank=True)
    percent = models.PositiveSmallIntegerField(
        _("percent of the price"), default=0, validators=[MaxValueValidator(100)]
    )
    flat_won = models.PositiveIntegerField(_("flat amount (won)"), default=0)
    cap_percent = models.PositiveSmallIntegerField(
        _("flat amount at most (percent of the price)"),
        null=True,
        blank=True,
        validators=[MaxValueValidator(100)],
    )

    class Meta:
        verbose_name = _("cancellation tier")
        verbose_name_plural = _("cancellation tiers")
        ordering = ["-min_days_before"]
        constraints = [
            models.CheckConstraint(
                condition=Q(max_days_before__isnull=True)
                | Q(max_days_before__gte=F("min_days_before")),
                name="cancellation_tier_range_ordered",
                violation_error_code="range_reversed",
                violation_error_message=TIER_RANGE_REVERSED,
            ),
            models.CheckConstraint(
                condition=Q(percent__lte=100)
                & (Q(cap_percent__isnull=True) | Q(cap_percent__lte=100)),
                name="cancellation_tier_percent_at_most_100",
                violation_error_code="percent_over_100",
                # (%% is one percent sign: the message is formatted with the constraint name.)
                violation_error_message=_("A fee is at most 100%% of the price."),
            ),
        ]

    def clean(self):
        super().clean()
        if (
            self.max_days_before is not None
            and self.min_days_before is not None
            and self.max_days_before < self.min_days_before
        ):
            raise ValidationError(
                {"max_days_before": ValidationError(TIER_RANGE_REVERSED, code="range_reversed")}
            )

    def __str__(self) -> str:
        upper = "" if self.max_days_before is None else f" to D-{self.max_days_before}"
        return f"D-{self.min_days_before}{upper}"

    def fee(self, price: int) -> int:
        """The fee for one ticket of this price, in won (rounded down)."""
        flat = self.flat_won
        if self.cap_percent is not None:
            flat = min(flat, price * self.cap_percent // 100)
        return min(price, price * self.percent // 100 + flat)
