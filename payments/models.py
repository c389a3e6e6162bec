from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from config.money import format_won


class Wallet(models.Model):
    """A customer's balance in won. Changed only together with a ledger entry."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.PROTECT,
        related_name="wallet",
    )
    balance = models.BigIntegerField(_("balance"), default=0, help_text=_("Won (KRW)."))
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("wallet")
        verbose_name_plural = _("wallets")
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

    CHARGE = "charge", _("Charge")
    PAYMENT = "payment", _("Payment (tickets)")
    BOOKING_FEE = "booking_fee", _("Booking fee")
    REFUND = "refund", _("Refund (tickets)")
    CANCELLATION_FEE = "cancellation_fee", _("Cancellation fee")
    BOOKING_FEE_REFUND = "booking_fee_refund", _("Booking fee refund")


MONEY_IN = [LedgerKind.CHARGE, LedgerKind.REFUND, LedgerKind.BOOKING_FEE_REFUND]
MONEY_OUT = [LedgerKind.PAYMENT, LedgerKind.BOOKING_FEE, LedgerKind.CANCELLATION_FEE]


class LedgerEntry(models.Model):
    """Append-only: a wallet's balance is always the sum of its entries."""

    wallet = models.ForeignKey(
        Wallet, verbose_name=_("wallet"), on_delete=models.PROTECT, related_name="entries"
    )
    kind = models.CharField(_("kind"), max_length=20, choices=LedgerKind.choices)
    amount = models.BigIntegerField(_("amount"), help_text=_("Won; positive adds to the balance."))
    balance_after = models.BigIntegerField(_("balance after"))
    payment = models.ForeignKey(
        "Payment",
        verbose_name=_("payment"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="ledger_entries",
    )
    cancellation = models.ForeignKey(
        "Cancellation",
        verbose_name=_("cancellation"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="ledger_entries",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text=_("The operator, for refunds."),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("ledger entry")
        ordering = ["-id"]
        verbose_name_plural = _("ledger entries")
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
    COMPLETED = "completed", _("Completed")
    PARTLY_REFUNDED = "partly_refunded", _("Some seats cancelled or refunded")
    REFUNDED = "refunded", _("Every seat cancelled or refunded")


class Payment(models.Model):
    """A reservation paid from the wallet. One per reservation, enforced by the database."""

    reservation = models.OneToOneField(
        "reservations.Reservation",
        verbose_name=_("reservation"),
        on_delete=models.PROTECT,
        related_name="payment",
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.PROTECT,
        related_name="payments",
    )
    amount = models.PositiveBigIntegerField(
        _("amount"), help_text=_("Won (KRW): tickets and booking fees.")
    )
    booking_fee = models.PositiveBigIntegerField(
        _("booking fee"), default=0, help_text=_("Won: the booking fees within the amount.")
    )
    refunded_amount = models.PositiveBigIntegerField(
        _("refunded amount"),
        default=0,
        help_text=_("Won returned to the wallet so far, by cancellations and refunds."),
    )
    status = models.CharField(
        _("status"), max_length=16, choices=PaymentStatus.choices, default=PaymentStatus.COMPLETED
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    refunded_at = models.DateTimeField(_("refunded at"), null=True, blank=True)
    refunded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("refunded by"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )

    class Meta:
        verbose_name = _("payment")
        verbose_name_plural = _("payments")
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
    CUSTOMER = "customer", _("Cancelled by the customer (policy)")
    OPERATOR_POLICY = "operator_policy", _("Refunded by an operator, by the policy")
    OPERATOR_FULL = "operator_full", _("Refunded by an operator, in full")


class Cancellation(models.Model):
    """One cancellation of seats of a paid reservation, by the customer or an operator: who,
    when, which seats (items), what moved, and why. Its ledger lines sum to `amount`."""

    reservation = models.ForeignKey(
        "reservations.Reservation",
        verbose_name=_("reservation"),
        on_delete=models.PROTECT,
        related_name="cancellations",
    )
    payment = models.ForeignKey(
        Payment, verbose_name=_("payment"), on_delete=models.PROTECT, related_name="cancellations"
    )
    kind = models.CharField(_("kind"), max_length=16, choices=CancellationKind.choices)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        on_delete=models.PROTECT,
        related_name="+",
    )
    reason = models.TextField(_("reason"), blank=True)
    rule = models.CharField(_("rule"), max_length=200, help_text=_("The policy rule applied."))
    refund = models.PositiveBigIntegerField(
        _("refund"), help_text=_("Won: the tickets' prices returned.")
    )
    fee = models.PositiveBigIntegerField(_("fee"), help_text=_("Won: the cancellation fee kept."))
    booking_fee_refunded = models.PositiveBigIntegerField(_("booking fee refunded"), default=0)
    booking_fee_kept = models.PositiveBigIntegerField(_("booking fee kept"), default=0)
    amount = models.PositiveBigIntegerField(
        _("amount"), help_text=_("Won: what went back to the wallet.")
    )
    job = models.ForeignKey(
        "RefundJob",
        verbose_name=_("job"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="cancellations",
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("cancellation")
        verbose_name_plural = _("cancellations")
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

    cancellation = models.ForeignKey(
        Cancellation, verbose_name=_("cancellation"), on_delete=models.CASCADE, related_name="items"
    )
    item = models.OneToOneField(
        "reservations.ReservationSeat",
        verbose_name=_("item"),
        on_delete=models.PROTECT,
        related_name="cancellation_item",
    )
    price = models.PositiveIntegerField(_("price"))
    fee = models.PositiveIntegerField(_("fee"))
    booking_fee = models.PositiveIntegerField(_("booking fee"))
    booking_fee_refunded = models.PositiveIntegerField(_("booking fee refunded"))
    refund = models.PositiveIntegerField(
        _("refund"), help_text=_("Won back for this seat, booking fee included.")
    )

    class Meta:
        verbose_name = _("cancellation item")
        verbose_name_plural = _("cancellation items")
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
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")


class RefundJob(models.Model):
    """An operator refunds every paid reservation of a performance (the show is cancelled):
    run by a Celery task, one reservation per transaction, resumable (a beat task restarts a
    job whose lease ran out, e.g. its worker died), each reservation refunded exactly once
    (a refunded reservation is no longer confirmed, so a rerun skips it)."""

    schedule = models.ForeignKey(
        "concerts.Schedule", verbose_name=_("schedule"), on_delete=models.PROTECT, related_name="+"
    )
    kind = models.CharField(_("kind"), max_length=16, choices=CancellationKind.choices)
    reason = models.TextField(_("reason"))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        on_delete=models.PROTECT,
        related_name="+",
    )
    state = models.CharField(
        _("state"), max_length=10, choices=RefundJobState.choices, default=RefundJobState.QUEUED
    )
    total = models.PositiveIntegerField(
        _("total"), help_text=_("Paid reservations when the job was made.")
    )
    refunded = models.PositiveIntegerField(_("refunded"), default=0)
    lease_until = models.DateTimeField(_("lease until"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        verbose_name = _("refund job")
        verbose_name_plural = _("refund jobs")
        ordering = ["-id"]

    def __str__(self) -> str:
        return gettext("Refund job %(id)s (%(refunded)s of %(total)s refunded)") % {
            "id": self.id,
            "refunded": self.refunded,
            "total": self.total,
        }
