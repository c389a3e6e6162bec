from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from config.money import format_won


class Wallet(models.Model):
    """A customer's balance in won. Changed only together with a ledger entry."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="wallet"
    )
    balance = models.BigIntegerField(default=0, help_text="Won (KRW).")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(balance__gte=0),
                name="wallet_never_negative",
                violation_error_code="balance_negative",
                violation_error_message=_("A wallet's balance is never below ₩0."),
            ),
        ]

    def __str__(self) -> str:
        return gettext("Wallet of %(customer)s") % {"customer": self.user}


class LedgerKind(models.TextChoices):
    """What a ledger line is. A payment is two lines (the tickets, their booking fees), a
    cancellation up to three (the tickets back, the cancellation fee kept, the booking fees
    back when cancelled the day they were paid): the lines of one event sum to what moved."""

    CHARGE = "charge", "Charge"
    PAYMENT = "payment", "Payment (tickets)"
    BOOKING_FEE = "booking_fee", "Booking fee"
    REFUND = "refund", "Refund (tickets)"
    CANCELLATION_FEE = "cancellation_fee", "Cancellation fee"
    BOOKING_FEE_REFUND = "booking_fee_refund", "Booking fee refund"


MONEY_IN = [LedgerKind.CHARGE, LedgerKind.REFUND, LedgerKind.BOOKING_FEE_REFUND]
MONEY_OUT = [LedgerKind.PAYMENT, LedgerKind.BOOKING_FEE, LedgerKind.CANCELLATION_FEE]


class LedgerEntry(models.Model):
    """Append-only: a wallet's balance is always the sum of its entries."""

    wallet = models.ForeignKey(Wallet, on_delete=models.PROTECT, related_name="entries")
    kind = models.CharField(max_length=20, choices=LedgerKind.choices)
    amount = models.BigIntegerField(help_text="Won; positive adds to the balance.")
    balance_after = models.BigIntegerField()
    payment = models.ForeignKey(
        "Payment", null=True, blank=True, on_delete=models.PROTECT, related_name="ledger_entries"
    )
    cancellation = models.ForeignKey(
        "Cancellation",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="ledger_entries",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The operator, for refunds.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "ledger entries"
        constraints = [
            models.CheckConstraint(
                condition=(Q(kind__in=MONEY_OUT) & Q(amount__lt=0))
                | (Q(kind__in=MONEY_IN) & Q(amount__gt=0)),
                name="ledger_amount_sign_matches_kind",
                violation_error_code="sign_mismatch",
                violation_error_message=_(
                    "Charges and refunds add money (a positive amount); payments and fees "
                    "take it (a negative amount)."
                ),
            ),
            models.CheckConstraint(
                condition=Q(balance_after__gte=0),
                name="ledger_balance_after_not_negative",
                violation_error_code="balance_negative",
                violation_error_message=_("A wallet's balance is never below ₩0."),
            ),
        ]

    def __str__(self) -> str:
        """ "Refund (tickets) +₩110,000 (#52)": what moved, signed as the wallet saw it."""
        amount = format_won(self.amount)
        return gettext("%(kind)s %(amount)s (#%(id)s)") % {
            "kind": self.get_kind_display(),
            "amount": f"+{amount}" if self.amount > 0 else amount,
            "id": self.id,
        }


class PaymentStatus(models.TextChoices):
    COMPLETED = "completed", "Completed"
    PARTLY_REFUNDED = "partly_refunded", "Some seats cancelled or refunded"
    REFUNDED = "refunded", "Every seat cancelled or refunded"


class Payment(models.Model):
    """A reservation paid from the wallet. One per reservation, enforced by the database."""

    reservation = models.OneToOneField(
        "reservations.Reservation", on_delete=models.PROTECT, related_name="payment"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="payments"
    )
    amount = models.PositiveBigIntegerField(help_text="Won (KRW): tickets and booking fees.")
    booking_fee = models.PositiveBigIntegerField(
        default=0, help_text="Won: the booking fees within the amount."
    )
    refunded_amount = models.PositiveBigIntegerField(
        default=0, help_text="Won returned to the wallet so far, by cancellations and refunds."
    )
    status = models.CharField(
        max_length=16, choices=PaymentStatus.choices, default=PaymentStatus.COMPLETED
    )
    created_at = models.DateTimeField(auto_now_add=True)
    refunded_at = models.DateTimeField(null=True, blank=True)
    refunded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["user", "-id"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(amount__gt=0),
                name="payment_amount_positive",
                violation_error_code="amount_not_positive",
                violation_error_message=_("A payment is of at least ₩1."),
            ),
            # Money back never exceeds money paid: a refund racing a cancellation cannot pay
            # out twice (they also serialise on the reservation's row).
            models.CheckConstraint(
                condition=Q(refunded_amount__lte=F("amount")),
                name="payment_refund_at_most_paid",
                violation_error_code="refund_over_paid",
                violation_error_message=_("More cannot be refunded than was paid."),
            ),
        ]
        permissions = [
            ("refund_payment", _("Can refund payments (money back to the customer's wallet)")),
        ]

    def __str__(self) -> str:
        return gettext("Payment %(id)s: %(amount)s for reservation %(reservation)s") % {
            "id": self.id,
            "amount": format_won(self.amount),
            "reservation": self.reservation_id,
        }


class CancellationKind(models.TextChoices):
    CUSTOMER = "customer", "Cancelled by the customer (policy)"
    OPERATOR_POLICY = "operator_policy", "Refunded by an operator, by the policy"
    OPERATOR_FULL = "operator_full", "Refunded by an operator, in full"


class Cancellation(models.Model):
    """One cancellation of seats of a paid reservation, by the customer or an operator: who,
    when, which seats (items), what moved, and why. Its ledger lines sum to `amount`."""

    reservation = models.ForeignKey(
        "reservations.Reservation", on_delete=models.PROTECT, related_name="cancellations"
    )
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="cancellations")
    kind = models.CharField(max_length=16, choices=CancellationKind.choices)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    reason = models.TextField(blank=True)
    rule = models.CharField(max_length=200, help_text="The policy rule applied.")
    refund = models.PositiveBigIntegerField(help_text="Won: the tickets' prices returned.")
    fee = models.PositiveBigIntegerField(help_text="Won: the cancellation fee kept.")
    booking_fee_refunded = models.PositiveBigIntegerField(default=0)
    booking_fee_kept = models.PositiveBigIntegerField(default=0)
    amount = models.PositiveBigIntegerField(help_text="Won: what went back to the wallet.")
    job = models.ForeignKey(
        "RefundJob", null=True, blank=True, on_delete=models.PROTECT, related_name="cancellations"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(amount=F("refund") - F("fee") + F("booking_fee_refunded")),
                name="cancellation_amount_adds_up",
                violation_error_code="amounts_do_not_add_up",
                violation_error_message=_(
                    "What goes back to the wallet must equal the tickets refunded, less the "
                    "cancellation fee, plus the booking fees refunded."
                ),
            ),
        ]

    def __str__(self) -> str:
        return gettext("Cancellation %(id)s of reservation %(reservation)s: %(amount)s back") % {
            "id": self.id,
            "reservation": self.reservation_id,
            "amount": format_won(self.amount),
        }


class CancellationItem(models.Model):
    """A seat of a cancellation, with its money. One per reservation seat, ever (OneToOne):
    however many requests race, a seat's money moves once. Per seat: refund + fee + booking
    fee kept = price + booking fee paid."""

    cancellation = models.ForeignKey(Cancellation, on_delete=models.CASCADE, related_name="items")
    item = models.OneToOneField(
        "reservations.ReservationSeat", on_delete=models.PROTECT, related_name="cancellation_item"
    )
    price = models.PositiveIntegerField()
    fee = models.PositiveIntegerField()
    booking_fee = models.PositiveIntegerField()
    booking_fee_refunded = models.PositiveIntegerField()
    refund = models.PositiveIntegerField(help_text="Won back for this seat, booking fee included.")

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(
                    refund=F("price") - F("fee") + F("booking_fee_refunded"),
                    booking_fee_refunded__lte=F("booking_fee"),
                    fee__lte=F("price"),
                ),
                name="cancellation_item_adds_up",
                violation_error_code="amounts_do_not_add_up",
                violation_error_message=_(
                    "Per seat, the refund must equal the price, less the cancellation fee "
                    "(at most the price), plus the booking fee refunded (at most the fee paid)."
                ),
            ),
        ]

    def __str__(self) -> str:
        """ "A-1-3: ₩88,000 back": reads the seat (select_related("item__seat") in lists)."""
        return gettext("%(seat)s: %(refund)s back") % {
            "seat": self.item.seat,
            "refund": format_won(self.refund),
        }


class RefundJobState(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"


class RefundJob(models.Model):
    """An operator refunds every paid reservation of a performance (the show is cancelled):
    run by a Celery task, one reservation per transaction, resumable (a beat task restarts a
    job whose lease ran out, e.g. its worker died), each reservation refunded exactly once
    (a refunded reservation is no longer confirmed, so a rerun skips it)."""

    schedule = models.ForeignKey("concerts.Schedule", on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=16, choices=CancellationKind.choices)
    reason = models.TextField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    state = models.CharField(
        max_length=10, choices=RefundJobState.choices, default=RefundJobState.QUEUED
    )
    total = models.PositiveIntegerField(help_text="Paid reservations when the job was made.")
    refunded = models.PositiveIntegerField(default=0)
    lease_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return gettext("Refund job %(id)s (%(refunded)s of %(total)s refunded)") % {
            "id": self.id,
            "refunded": self.refunded,
            "total": self.total,
        }
