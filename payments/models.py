from django.conf import settings
from django.db import models
from django.db.models import Q


class Wallet(models.Model):
    """A customer's balance in won. Changed only together with a ledger entry."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="wallet"
    )
    balance = models.BigIntegerField(default=0, help_text="Won (KRW).")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(balance__gte=0), name="wallet_never_negative"),
        ]

    def __str__(self) -> str:
        return f"Wallet of {self.user}"


class LedgerKind(models.TextChoices):
    CHARGE = "charge", "Charge"
    PAYMENT = "payment", "Payment"
    REFUND = "refund", "Refund"


class LedgerEntry(models.Model):
    """Append-only: a wallet's balance is always the sum of its entries."""

    wallet = models.ForeignKey(Wallet, on_delete=models.PROTECT, related_name="entries")
    kind = models.CharField(max_length=10, choices=LedgerKind.choices)
    amount = models.BigIntegerField(help_text="Won; positive adds to the balance.")
    balance_after = models.BigIntegerField()
    payment = models.ForeignKey(
        "Payment", null=True, blank=True, on_delete=models.PROTECT, related_name="ledger_entries"
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
                condition=(Q(kind=LedgerKind.PAYMENT) & Q(amount__lt=0))
                | (Q(kind__in=[LedgerKind.CHARGE, LedgerKind.REFUND]) & Q(amount__gt=0)),
                name="ledger_amount_sign_matches_kind",
            ),
            models.CheckConstraint(
                condition=Q(balance_after__gte=0), name="ledger_balance_after_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.id}"


class PaymentStatus(models.TextChoices):
    COMPLETED = "completed", "Completed"
    REFUNDED = "refunded", "Refunded"


class Payment(models.Model):
    """A reservation paid from the wallet. One per reservation, enforced by the database."""

    reservation = models.OneToOneField(
        "reservations.Reservation", on_delete=models.PROTECT, related_name="payment"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="payments"
    )
    amount = models.PositiveBigIntegerField(help_text="Won (KRW).")
    status = models.CharField(
        max_length=10, choices=PaymentStatus.choices, default=PaymentStatus.COMPLETED
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
            models.CheckConstraint(condition=Q(amount__gt=0), name="payment_amount_positive"),
        ]

    def __str__(self) -> str:
        return f"Payment {self.id} of reservation {self.reservation_id}"
