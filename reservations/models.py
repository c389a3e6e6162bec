from django.conf import settings
from django.db import models
from django.db.models import Q

# The most seats one reservation covers. How many a customer may hold and own of one
# performance, across reservations, is the concert's ticket_limit.
MAX_SEATS_PER_RESERVATION = 4


class ReservationStatus(models.TextChoices):
    HELD = "held", "Held"
    CONFIRMED = "confirmed", "Confirmed (paid)"
    EXPIRED = "expired", "Expired"
    CANCELLED = "cancelled", "Cancelled"
    REFUNDED = "refunded", "Refunded"


class Reservation(models.Model):
    """1-4 seats of one schedule, held for a few minutes, then paid, or let go.

    held -> confirmed | expired | cancelled; confirmed -> cancelled (the customer cancelled
    every seat) | refunded (an operator refunded it). A customer may cancel some of the seats:
    the reservation stays confirmed with fewer (its items say which were cancelled). A held
    reservation whose `expires_at` has passed is expired everywhere at once, even before the
    sweep marks it.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="reservations"
    )
    schedule = models.ForeignKey(
        "concerts.Schedule", on_delete=models.PROTECT, related_name="reservations"
    )
    status = models.CharField(
        max_length=10, choices=ReservationStatus.choices, default=ReservationStatus.HELD
    )
    total_price = models.PositiveIntegerField(help_text="Won (KRW): the tickets' prices.")
    booking_fee_total = models.PositiveIntegerField(
        default=0, help_text="Won: the booking fee of every ticket, charged with the payment."
    )
    expires_at = models.DateTimeField(help_text="End of the hold.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["status", "expires_at"]),  # the expiry sweep
            models.Index(fields=["user", "schedule", "status"]),  # a customer's holds
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=ReservationStatus.values), name="reservation_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(total_price__gt=0), name="reservation_total_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"Reservation {self.id} ({self.status})"


class ReservationSeat(models.Model):
    """Which seats a reservation covers, at which price and booking fee: the record that
    stays when the seat itself moves on (its hold expired, it was cancelled or refunded)."""

    reservation = models.ForeignKey(Reservation, on_delete=models.CASCADE, related_name="items")
    seat = models.ForeignKey("concerts.Seat", on_delete=models.PROTECT, related_name="+")
    price = models.PositiveIntegerField(help_text="Won (KRW), at the time of the hold.")
    booking_fee = models.PositiveIntegerField(
        default=0, help_text="Won, the concert's booking fee at the time of the hold."
    )
    # Set when this seat of a paid reservation was cancelled or refunded (payments.Cancellation
    # says by whom, how much and why); the seat went back on sale then.
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["seat_id"]
        constraints = [
            models.UniqueConstraint(fields=["reservation", "seat"], name="reservation_seat_once"),
        ]
