from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html

from config.admin import ReadOnlyAdmin, ReadOnlyInline
from config.errors import DomainError
from config.money import format_won

from .models import LedgerEntry, Payment, PaymentStatus, Wallet
from .services import payment_refund


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "user",
        "reservation_link",
        "amount_won",
        "status",
        "created_at",
        "refunded_at",
        "refunded_by",
    ]
    list_filter = ["status", "reservation__schedule__concert", "created_at"]
    search_fields = ["id", "user__email", "reservation__id"]
    list_select_related = ["user", "reservation", "refunded_by"]
    fields = [
        "user",
        "reservation_link",
        "amount_won",
        "status",
        "created_at",
        "refunded_at",
        "refunded_by",
    ]
    readonly_fields = fields
    actions = ["refund"]

    def has_change_permission(self, request, obj=None):
        # Actions need a change permission; the fields stay read-only.
        return request.user.has_perm("payments.change_payment")

    @admin.display(description="Reservation")
    def reservation_link(self, payment: Payment) -> str:
        url = reverse("admin:reservations_reservation_change", args=[payment.reservation_id])
        return format_html('<a href="{}">{}</a>', url, payment.reservation_id)

    @admin.display(description="Amount", ordering="amount")
    def amount_won(self, payment: Payment) -> str:
        return format_won(payment.amount)

    @admin.action(description="Refund the selected payments to the customers' wallets")
    def refund(self, request, queryset):
        skipped = queryset.exclude(status=PaymentStatus.COMPLETED).count()
        refunded = 0
        for payment in queryset.filter(status=PaymentStatus.COMPLETED):
            try:
                payment_refund(payment_id=payment.id, operator=request.user)
            except DomainError as error:
                self.message_user(request, f"Payment {payment.id}: {error.message}", messages.ERROR)
                continue
            # Django's admin history is the audit trail of who did what, and when.
            self.log_change(
                request,
                payment,
                f"Refunded {format_won(payment.amount)} to the wallet; "
                f"reservation {payment.reservation_id}'s seats are on sale again.",
            )
            refunded += 1
        self.message_user(
            request,
            f"Refunded {refunded} payment(s)."
            + (f" {skipped} already refunded." if skipped else ""),
            messages.SUCCESS if refunded else messages.WARNING,
        )


class LedgerEntryInline(ReadOnlyInline):
    model = LedgerEntry
    fields = ["created_at", "kind", "amount_won", "balance_after_won", "payment", "created_by"]
    readonly_fields = fields
    ordering = ["-id"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("payment", "created_by")

    @admin.display(description="Amount")
    def amount_won(self, entry: LedgerEntry) -> str:
        return format_won(entry.amount)

    @admin.display(description="Balance after")
    def balance_after_won(self, entry: LedgerEntry) -> str:
        return format_won(entry.balance_after)


@admin.register(Wallet)
class WalletAdmin(ReadOnlyAdmin):
    list_display = ["user", "balance_won", "updated_at"]
    search_fields = ["user__email"]
    list_select_related = ["user"]
    fields = ["user", "balance_won", "updated_at"]
    readonly_fields = fields
    inlines = [LedgerEntryInline]

    @admin.display(description="Balance", ordering="balance")
    def balance_won(self, wallet: Wallet) -> str:
        return format_won(wallet.balance)


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "wallet",
        "kind",
        "amount_won",
        "balance_after_won",
        "payment",
        "created_by",
        "created_at",
    ]
    list_filter = ["kind", "created_at"]
    search_fields = ["wallet__user__email"]
    list_select_related = ["wallet__user", "payment", "created_by"]
    show_full_result_count = False

    @admin.display(description="Amount", ordering="amount")
    def amount_won(self, entry: LedgerEntry) -> str:
        return format_won(entry.amount)

    @admin.display(description="Balance after")
    def balance_after_won(self, entry: LedgerEntry) -> str:
        return format_won(entry.balance_after)
