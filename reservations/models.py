from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from config.money import format_won

# The most seats one reservation covers. How many a customer may hold and own of one
# performance, across reservations, is the concert's ticket_limit.
MAX_SEATS_PER_RESERVATION = 4


class ReservationStatus(models.TextChoices):
    HELD = "held", _("Held")
    CONFIRMED = "confirmed", _("Confirmed (paid)")
    EXPIRED = "expired", _("Expired")
    CANCELLED = "cancelled", _("Cancelled")
    REFUNDED = "refunded", _("Refunded")


class ReservationSource(models.TextChoices):
    QUEUE = "queue", _("Hold by an admitted customer")
    WAITLIST = "waitlist", _("Waitlist offer")


class Reservation(models.Model):
    """1-4 seats of one schedule, held for a few minutes, then paid, or let go.

    held -> confirmed | expired | cancelled; confirmed -> cancelled (the customer cancelled
    every seat) | refunded (an operator refunded it). `source`: a customer's own hold (queue), or
    returned seats offered to them from the waitlist (waitlist; held for offer_minutes). A customer may cancel some of the seats:
    the reservation stays confirmed with fewer (its items say which were cancelled). A held
    reservation whose `expires_at` has passed is expired everywhere at once, even before the
    sweep marks it.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.PROTECT,
        related_name="reservations",
    )
    schedule = models.ForeignKey(
        "concerts.Schedule",
        verbose_name=_("schedule"),
        on_delete=models.PROTECT,
        related_name="reservations",
    )
    status = models.CharField(
        _("status"),
        max_length=10,
        choices=ReservationStatus.choices,
        default=ReservationStatus.HELD,
    )
    total_price = models.PositiveIntegerField(
        _("total price"), help_text=_("Won (KRW): the tickets' prices.")
    )
    booking_fee_total = models.PositiveIntegerField(
        _("booking fee total"),
        default=0,
        help_text=_("Won: the booking fee of every ticket, charged with the payment."),
    )
    expires_at = models.DateTimeField(_("expires at"), help_text=_("End of the hold."))
    source = models.CharField(
        _("source"),
        max_length=10,
        choices=ReservationSource.choices,
        default=ReservationSource.QUEUE,
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("reservation")
        verbose_name_plural = _("reservations")
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["status", "expires_at"]),  # the expiry sweep
            models.Index(fields=["user", "schedule", "status"]),  # a customer's holds
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=ReservationStatus.values),
                name="reservation_status_valid",
                violation_error_code="invalid_status",
                violation_error_message=_(
                    "A reservation is held, confirmed, expired, cancelled or refunded."
                ),
            ),
            models.CheckConstraint(
                condition=Q(total_price__gt=0),
                name="reservation_total_positive",
                violation_error_code="total_not_positive",
                violation_error_message=_("A reservation's tickets cost at least ₩1."),
            ),
            models.CheckConstraint(
                condition=Q(source__in=ReservationSource.values),
                name="reservation_source_valid",
                violation_error_code="invalid_source",
                violation_error_message=_(
                    "A reservation begins as a customer's hold or as a waitlist offer."
                ),
            ),
        ]
        permissions = [
            ("release_hold", _("Can release a customer's hold (the seats go back on sale)")),
        ]

    def __str__(self) -> str:
        return gettext("Reservation %(id)s (%(status)s)") % {
            "id": self.id,
            "status": self.get_status_display(),
        }


class ReservationSeat(models.Model):
    """Which seats a reservation covers, at which price and booking fee: the record that
    stays when the seat itself moves on (its hold expired, it was cancelled or refunded)."""

    reservation = models.ForeignKey(
        Reservation, verbose_name=_("reservation"), on_delete=models.CASCADE, related_name="items"
    )
    seat = models.ForeignKey(
        "concerts.Seat", verbose_name=_("seat"), on_delete=models.PROTECT, related_name="+"
    )
    price = models.PositiveIntegerField(
        _("price"), help_text=_("Won (KRW), at the time of the hold.")
    )
    booking_fee = models.PositiveIntegerField(
        _("booking fee"),
        default=0,
        help_text=_("Won, the concert's booking fee at the time of the hold."),
    )
    # Set when this seat of a paid reservation was cancelled or refunded (payments.Cancellation
    # says by whom, how much and why); the seat went back on sale then.
    cancelled_at = models.DateTimeField(_("cancelled at"), null=True, blank=True)

    class Meta:
        verbose_name = _("reservation seat")
        verbose_name_plural = _("reservation seats")
        ordering = ["seat_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["reservation", "seat"],
                name="reservation_seat_once",
                violation_error_code="seat_twice",
                violation_error_message=_("A reservation covers each seat once."),
            ),
        ]

    def __str__(self) -> str:
        """ "A-1-3 (₩165,000)": reads the seat (select_related("seat") in lists)."""
        if self.cancelled_at is not None:
            return gettext("%(seat)s (%(price)s, cancelled)") % {
                "seat": self.seat,
                "price": format_won(self.price),
            }
        return f"{self.seat} ({format_won(self.price)})"


class WaitlistStatus(models.TextChoices):
    WAITING = "waiting", _("Waiting")
    OFFERED = "offered", _("Offered")
    BOUGHT = "bought", _("Bought")
    LAPSED = "lapsed", _("Lapsed")
    LEFT = "left", _("Left")


LIVE_WAITLIST_STATUSES = (WaitlistStatus.WAITING, WaitlistStatus.OFFERED)


class WaitlistEntry(models.Model):
    """A customer waiting for returned seats of a sold-out performance (예매대기):
    `quantity` seats of one of `grades` (empty: any grade), in the order they joined.

    waiting -> offered (returned seats are held for them: `offer`) -> bought (paid) | lapsed
    (the offer ran out) | left (they left the list or declined the offer); waiting -> left.
    One live (waiting or offered) entry per customer and performance: `live` is True while
    live and NULL after, so a unique index over (user, schedule, live) lets ended entries pile
    up but never two live ones (NULLs never collide; MariaDB has no partial unique index).
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.PROTECT,
        related_name="waitlist_entries",
    )
    schedule = models.ForeignKey(
        "concerts.Schedule",
        verbose_name=_("schedule"),
        on_delete=models.PROTECT,
        related_name="waitlist_entries",
    )
    quantity = models.PositiveSmallIntegerField(_("quantity"))
    # The grades as the customer listed them, "|"-separated with a leading and a trailing
    # "|" ("|VIP|R|"), so that "waits for grade g" is one LIKE '%|g|%'; "" waits for any.
    grade_key = models.CharField(_("grade key"), max_length=200, blank=True, default="")
    status = models.CharField(
        _("status"), max_length=10, choices=WaitlistStatus.choices, default=WaitlistStatus.WAITING
    )
    live = models.BooleanField(_("live"), null=True, default=True)
    auto_pay = models.BooleanField(_("auto pay"), default=False)
    max_total = models.PositiveIntegerField(
        _("max total"),
        null=True,
        blank=True,
        help_text=_("Won: auto-pay only offers costing at most this."),
    )
    offer = models.OneToOneField(
        Reservation,
        verbose_name=_("offer"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="waitlist_entry",
        help_text=_("The reservation holding the seats offered (the latest offer)."),
    )
    joined_at = models.DateTimeField(_("joined at"))
    offered_at = models.DateTimeField(_("offered at"), null=True, blank=True)
    ended_at = models.DateTimeField(_("ended at"), null=True, blank=True)

    class Meta:
        verbose_name = _("waitlist entry")
        ordering = ["joined_at", "id"]
        verbose_name_plural = _("waitlist entries")
        indexes = [
            # The line: a performance's waiting entries in join order.
            models.Index(fields=["schedule", "status", "joined_at", "id"]),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "schedule", "live"],
                name="waitlist_one_live_entry",
                violation_error_code="entry_exists",
                violation_error_message=_(
                    "This customer already waits for this performance: one live entry each."
                ),
            ),
            models.CheckConstraint(
                condition=Q(quantity__gte=1, quantity__lte=MAX_SEATS_PER_RESERVATION),
                name="waitlist_quantity_1_to_4",
                violation_error_code="quantity_out_of_range",
                violation_error_message=_("A customer waits for 1 to 4 seats."),
            ),
            models.CheckConstraint(
                condition=Q(status__in=WaitlistStatus.values),
                name="waitlist_status_valid",
                violation_error_code="invalid_status",
                violation_error_message=_(
                    "A waitlist entry is waiting, offered, bought, lapsed or left."
                ),
            ),
            models.CheckConstraint(
                condition=Q(live=True, status__in=LIVE_WAITLIST_STATUSES)
                | (Q(live__isnull=True) & ~Q(status__in=LIVE_WAITLIST_STATUSES)),
                name="waitlist_live_iff_waiting_or_offered",
                violation_error_code="live_mismatch",
                violation_error_message=_(
                    "Only a waiting or offered entry is live; an ended one is not."
                ),
            ),
        ]

    @property
    def grades(self) -> list[str] | None:
        return self.grade_key.strip("|").split("|") if self.grade_key else None

    def __str__(self) -> str:
        return gettext("Waitlist entry %(id)s: %(quantity)s × %(grades)s (%(status)s)") % {
            "id": self.id,
            "quantity": self.quantity,
            "grades": "/".join(self.grades) if self.grades else gettext("any grade"),
            "status": self.get_status_display(),
        }


class WaitlistEventKind(models.TextChoices):
    OFFERED = "offered", _("Offer made")
    TAKEN = "taken", _("Offer paid")
    LAPSED = "lapsed", _("Offer lapsed")
    DECLINED = "declined", _("Offer declined")
    AUTO_PAY_FAILED = "auto_pay_failed", _("Auto-pay not possible")


class WaitlistEvent(models.Model):
    """What happened to a waitlist entry's offers, written in the transaction that did it:
    the record customers read (GET /waitlist) and the events issue will publish."""

    entry = models.ForeignKey(
        WaitlistEntry, verbose_name=_("entry"), on_delete=models.CASCADE, related_name="events"
    )
    kind = models.CharField(_("kind"), max_length=20, choices=WaitlistEventKind.choices)
    reservation = models.ForeignKey(
        Reservation,
        verbose_name=_("reservation"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    details = models.JSONField(_("details"), default=dict, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("waitlist event")
        verbose_name_plural = _("waitlist events")
        ordering = ["id"]

    def __str__(self) -> str:
        return gettext("%(kind)s, waitlist entry %(entry)s, %(at)s") % {
            "kind": self.get_kind_display(),
            "entry": self.entry_id,
            "at": f"{timezone.localtime(self.created_at):%Y-%m-%d %H:%M}"
            if self.created_at
            else "—",
        }
