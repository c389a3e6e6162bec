from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

POSITIVE_SETTINGS = (
    "queue_max_active",
    "queue_admit_per_minute",
    "queue_admitted_minutes",
    "queue_abandon_after_seconds",
    "hold_minutes",
)
AT_LEAST_ONE = [MinValueValidator(1)]
# The waiting room's settings, as operators edit them (concert admin and the queue panel).
QUEUE_SETTINGS_FIELDS = [
    "queue_paused",
    "queue_max_active",
    "queue_admit_per_minute",
    "queue_admitted_minutes",
    "queue_abandon_after_seconds",
]


class Concert(models.Model):
    title = models.CharField(max_length=200)
    artist = models.CharField(max_length=200)
    venue = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    is_published = models.BooleanField(
        default=False, help_text="Only published concerts are shown to customers."
    )
    sale_opens_at = models.DateTimeField(
        null=True, blank=True, help_text="When tickets go on sale. Empty: not announced yet."
    )
    # The waiting room (queueing app). Settings live here, state lives in Redis.
    queue_max_active = models.PositiveIntegerField(
        "customers shopping at once",
        default=100,
        validators=AT_LEAST_ONE,
        help_text="How many admitted customers may view seats and hold at the same time.",
    )
    queue_admit_per_minute = models.PositiveIntegerField(
        "admissions per minute",
        default=300,
        validators=AT_LEAST_ONE,
        help_text="The most customers let in a minute.",
    )
    queue_admitted_minutes = models.PositiveIntegerField(
        "admitted session (minutes)",
        default=10,
        validators=AT_LEAST_ONE,
        help_text="How long an admitted customer may shop before the slot goes to the next.",
    )
    queue_abandon_after_seconds = models.PositiveIntegerField(
        "abandon after (seconds)",
        default=300,
        validators=AT_LEAST_ONE,
        help_text="A waiting customer who stops polling this long loses their place.",
    )
    queue_paused = models.BooleanField(
        "admission paused", default=False, help_text="Nobody new is let in while paused."
    )
    hold_minutes = models.PositiveIntegerField(
        default=5,
        validators=AT_LEAST_ONE,
        help_text="How long held seats wait for payment before going back on sale.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["is_published", "id"])]
        # One constraint per field: a ModelForm validates only the constraints whose fields
        # are all on the form, and the queue panel shows some of these fields, not all.
        constraints = [
            models.CheckConstraint(
                condition=Q(**{f"{name}__gt": 0}), name=f"concert_{name}_positive"
            )
            for name in POSITIVE_SETTINGS
        ]

    def __str__(self) -> str:
        return f"{self.artist} — {self.title}" if self.artist else self.title


class Schedule(models.Model):
    """One performance of a concert: a date and time with its own seat map."""

    concert = models.ForeignKey(Concert, on_delete=models.CASCADE, related_name="schedules")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["starts_at", "id"]
        indexes = [models.Index(fields=["concert", "starts_at"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__gt=F("starts_at")), name="schedule_ends_after_start"
            ),
        ]

    def __str__(self) -> str:
        if self.starts_at is None:
            return str(self.concert)
        return f"{self.concert} @ {timezone.localtime(self.starts_at):%Y-%m-%d %H:%M}"


class SeatStatus(models.TextChoices):
    AVAILABLE = "available", "Available"
    HELD = "held", "Held"
    SOLD = "sold", "Sold"


class Seat(models.Model):
    """A seat of one performance. Price is in won (KRW), an integer: money is never a float."""

    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="seats")
    section = models.CharField(max_length=20)
    row = models.PositiveSmallIntegerField()
    number = models.PositiveSmallIntegerField()
    grade = models.CharField(max_length=20, help_text="Price class, e.g. VIP, R, S.")
    price = models.PositiveIntegerField(help_text="Won (KRW).")
    status = models.CharField(
        max_length=10, choices=SeatStatus.choices, default=SeatStatus.AVAILABLE
    )
    # Set while held. A hold past this instant counts as free everywhere, before any sweep runs.
    hold_expires_at = models.DateTimeField(null=True, blank=True)
    # The reservation holding or owning the seat now. One column, so the database itself
    # keeps a seat from belonging to two reservations at once.
    reservation = models.ForeignKey(
        "reservations.Reservation",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="current_seats",
    )

    class Meta:
        ordering = ["section", "row", "number"]
        indexes = [models.Index(fields=["schedule", "status"])]
        constraints = [
            models.UniqueConstraint(
                fields=["schedule", "section", "row", "number"], name="seat_unique_per_schedule"
            ),
            models.CheckConstraint(condition=Q(price__gt=0), name="seat_price_positive"),
            models.CheckConstraint(
                condition=Q(row__gt=0) & Q(number__gt=0), name="seat_row_and_number_positive"
            ),
            models.CheckConstraint(
                condition=Q(status__in=SeatStatus.values), name="seat_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(status=SeatStatus.HELD, hold_expires_at__isnull=False)
                | (~Q(status=SeatStatus.HELD) & Q(hold_expires_at__isnull=True)),
                name="seat_hold_expiry_iff_held",
            ),
            models.CheckConstraint(
                condition=Q(status=SeatStatus.AVAILABLE, reservation__isnull=True)
                | (~Q(status=SeatStatus.AVAILABLE) & Q(reservation__isnull=False)),
                name="seat_reservation_iff_taken",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.section}-{self.row}-{self.number}"
