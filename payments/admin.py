from django.contrib import admin, messages
from django.shortcuts import render
from django.urls import reverse
from django.utils.html import format_html

from config.admin import ReadOnlyAdmin, ReadOnlyInline
from config.errors import DomainError
from config.money import format_won

from .cancellations import payment_refund
from .forms import RefundForm
from .models import (
    Cancellation,
    CancellationItem,
    LedgerEntry,
    Payment,
    RefundJob,
    Wallet,
)


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "user",
        "reservation_link",
        "amount_won",
        "refunded_won",
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
        "booking_fee_won",
        "refunded_won",
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

    @admin.display(description="Of which booking fees")
    def booking_fee_won(self, payment: Payment) -> str:
        return format_won(payment.booking_fee)

    @admin.display(description="Refunded", ordering="refunded_amount")
    def refunded_won(self, payment: Payment) -> str:
        return format_won(payment.refunded_amount)

    @admin.action(description="Refund the selected payments…")
    def refund(self, request, queryset):
        """A confirmation page first (what each customer gets back, by the policy or in
        full), with a reason; money moves only once it is confirmed."""
        payments = list(queryset.select_related("reservation", "user").order_by("id"))
        form = RefundForm(request.POST if request.POST.get("confirmed") else None)
        if form.is_bound and form.is_valid():
            return self._refund_confirmed(request, payments, form.cleaned_data)
        rows = [
            (
                payment.id,
                payment.user,
                payment.reservation_id,
                format_won(payment.amount),
                format_won(payment.refunded_amount),
                payment.get_status_display(),
            )
            for payment in payments
        ]
        return render(
            request,
            "admin/payments/refund_confirm.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "title": "Refund payments",
                "intro": f"Refund {len(payments)} payment(s) to the customers' wallets.",
                "headings": ["Payment", "Customer", "Reservation", "Paid", "Refunded", "Status"],
                "rows": rows,
                "form": form if form.is_bound else RefundForm(),
                "selected": [payment.id for payment in payments],
                "action": "refund",
                "confirm_label": "Yes, refund",
            },
        )

    def _refund_confirmed(self, request, payments, choice):
        refunded = 0
        for payment in payments:
            try:
                cancellation = payment_refund(
                    payment_id=payment.id,
                    operator=request.user,
                    in_full=choice["mode"] == RefundForm.IN_FULL,
                    reason=choice["reason"],
                )
            except DomainError as error:
                self.message_user(request, f"Payment {payment.id}: {error.message}", messages.ERROR)
                continue
            # Django's admin history is an audit trail beside the Cancellation record.
            self.log_change(
                request,
                payment,
                f"Refunded {format_won(cancellation.amount)} ({cancellation.rule}) because: "
                f"{cancellation.reason}",
            )
            refunded += 1
        self.message_user(
            request,
            f"Refunded {refunded} of {len(payments)} payment(s).",
            messages.SUCCESS if refunded == len(payments) else messages.WARNING,
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


class CancellationItemInline(ReadOnlyInline):
    model = CancellationItem
    fields = ["item", "price", "fee", "booking_fee", "booking_fee_refunded", "refund"]
    readonly_fields = fields


@admin.register(Cancellation)
class CancellationAdmin(ReadOnlyAdmin):
    """Who cancelled or refunded which seats, when, how much and why."""

    list_display = ["id", "reservation", "kind", "created_by", "amount_won", "rule", "created_at"]
    list_filter = ["kind", "created_at"]
    search_fields = ["reservation__id", "reservation__user__email", "created_by__email"]
    list_select_related = ["reservation", "created_by"]
    fields = [
        "reservation",
        "payment",
        "kind",
        "created_by",
        "reason",
        "rule",
        "refund",
        "fee",
        "booking_fee_refunded",
        "booking_fee_kept",
        "amount",
        "job",
        "created_at",
    ]
    readonly_fields = fields
    inlines = [CancellationItemInline]

    @admin.display(description="Back to the wallet", ordering="amount")
    def amount_won(self, cancellation: Cancellation) -> str:
        return format_won(cancellation.amount)


@admin.register(RefundJob)
class RefundJobAdmin(ReadOnlyAdmin):
    """Refunds of a whole performance, and how far each got."""

    list_display = ["id", "schedule", "kind", "state", "progress", "created_by", "created_at"]
    list_filter = ["state", "kind"]
    list_select_related = ["schedule__concert", "created_by"]
    fields = [
        "schedule",
        "kind",
        "reason",
        "state",
        "progress",
        "created_by",
        "created_at",
        "finished_at",
    ]
    readonly_fields = fields

    @admin.display(description="Refunded")
    def progress(self, job: RefundJob) -> str:
        return f"{job.refunded} of {job.total}"
