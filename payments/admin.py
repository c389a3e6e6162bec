from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from config.admin import (
    CONFIRM_ROWS_SHOWN,
    ConfirmTable,
    ReadOnlyAdmin,
    ReadOnlyInline,
    breakable_email,
    confirmation_page,
    local_time,
    require_permission,
)
from config.errors import DomainError
from config.money import format_won

from .cancellations import RefundPreview, payment_refund, refund_previews
from .forms import RefundForm
from .models import (
    Cancellation,
    CancellationItem,
    LedgerEntry,
    Payment,
    RefundJob,
    Wallet,
)

REFUND_PERMISSION = "payments.refund_payment"


def refund_rows(previews: list[RefundPreview]) -> list[tuple]:
    """A confirmation page's rows: per payment who gets what back, both ways."""
    return [
        (
            preview.payment_id,
            breakable_email(preview.customer),
            preview.reservation_id,
            ", ".join(preview.seats) or "—",
            format_won(preview.paid),
            format_won(preview.refunded),
            format_won(preview.by_policy)
            if preview.refundable
            else gettext("nothing (%(status)s)") % {"status": preview.status},
            format_won(preview.in_full) if preview.refundable else "—",
        )
        for preview in previews
    ]


def refund_totals(previews: list[RefundPreview]) -> tuple:
    refundable = [preview for preview in previews if preview.refundable]
    customers = len({preview.customer for preview in refundable})
    seats = sum(len(preview.seats) for preview in refundable)
    return (
        gettext("Total"),
        ngettext("%(count)s customer", "%(count)s customers", customers) % {"count": customers},
        "",
        ngettext("%(count)s seat", "%(count)s seats", seats) % {"count": seats},
        format_won(sum(preview.paid for preview in refundable)),
        format_won(sum(preview.refunded for preview in refundable)),
        format_won(sum(preview.by_policy for preview in refundable)),
        format_won(sum(preview.in_full for preview in refundable)),
    )


REFUND_HEADINGS = [
    _("Payment"),
    _("Customer"),
    _("Reservation"),
    _("Seats still paid"),
    _("Paid"),
    _("Refunded before"),
    _("Back by the policy"),
    _("Back in full"),
]


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "customer",
        "reservation_link",
        "amount_won",
        "refunded_won",
        "status",
        "created",
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
    show_full_result_count = False

    def has_refund_permission(self, request) -> bool:
        return request.user.has_perm(REFUND_PERMISSION)

    @admin.display(description=_("Customer"), ordering="user__email")
    def customer(self, payment: Payment) -> str:
        return breakable_email(payment.user.email)

    @admin.display(description=_("Created"), ordering="created_at")
    def created(self, payment: Payment) -> str:
        return local_time(payment.created_at)

    @admin.display(description=_("Reservation"))
    def reservation_link(self, payment: Payment) -> str:
        url = reverse("admin:reservations_reservation_change", args=[payment.reservation_id])
        return format_html('<a href="{}">{}</a>', url, payment.reservation_id)

    @admin.display(description=_("Amount"), ordering="amount")
    def amount_won(self, payment: Payment) -> str:
        return format_won(payment.amount)

    @admin.display(description=_("Of which booking fees"))
    def booking_fee_won(self, payment: Payment) -> str:
        return format_won(payment.booking_fee)

    @admin.display(description=_("Refunded"), ordering="refunded_amount")
    def refunded_won(self, payment: Payment) -> str:
        return format_won(payment.refunded_amount)

    @admin.action(description=_("Refund the selected payments…"), permissions=["refund"])
    def refund(self, request, queryset):
        """A confirmation page first: per payment the customer, the seats, what they get back
        by the policy and in full, the totals; the operator chooses how and says why. Money
        moves only once that is posted back."""
        require_permission(self.has_refund_permission(request))
        form = RefundForm(request.POST if request.POST.get("confirmed") else None)
        if form.is_bound and form.is_valid():
            return self._refund_confirmed(request, queryset, form.cleaned_data)
        previews = refund_previews(payments=queryset)
        refundable = sum(preview.refundable for preview in previews)
        return confirmation_page(
            self,
            request,
            title=gettext("Refund payments"),
            intro=ngettext(
                "Refund %(count)s of the %(selected)s selected payment to the customer's wallet.",
                "Refund %(count)s of the %(selected)s selected payments to the customers' wallets.",
                refundable,
            )
            % {"count": refundable, "selected": len(previews)},
            warning=gettext("No money moves until you confirm below."),
            tables=[
                ConfirmTable(
                    headings=REFUND_HEADINGS,
                    rows=refund_rows(previews[:CONFIRM_ROWS_SHOWN]),
                    more=max(0, len(previews) - CONFIRM_ROWS_SHOWN),
                    totals=refund_totals(previews),
                    empty=gettext("Nothing here can be refunded."),
                )
            ],
            form=form if form.is_bound else RefundForm(),
            selected=[preview.payment_id for preview in previews],
            action="refund",
            confirm_label=gettext("Yes, refund"),
        )

    def _refund_confirmed(self, request, queryset, choice):
        """Each payment in its own transaction, recorded in its history by the service (with
        the booking's): one that cannot be refunded is said so and moves nothing."""
        payment_ids = list(queryset.order_by("id").values_list("id", flat=True))
        refunded = 0
        for payment_id in payment_ids:
            try:
                payment_refund(
                    payment_id=payment_id,
                    operator=request.user,
                    in_full=choice["mode"] == RefundForm.IN_FULL,
                    reason=choice["reason"],
                )
            except DomainError as error:
                self.message_user(
                    request,
                    gettext("Payment %(id)s: %(problem)s")
                    % {"id": payment_id, "problem": error.message},
                    messages.ERROR,
                )
                continue
            refunded += 1
        self.message_user(
            request,
            gettext("Refunded %(refunded)s of %(count)s payment(s).")
            % {"refunded": refunded, "count": len(payment_ids)},
            messages.SUCCESS if refunded == len(payment_ids) else messages.WARNING,
        )


class LedgerEntryInline(ReadOnlyInline):
    model = LedgerEntry
    fields = ["created_at", "kind", "amount_won", "balance_after_won", "payment", "created_by"]
    readonly_fields = fields
    ordering = ["-id"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("payment", "created_by")

    @admin.display(description=_("Amount"))
    def amount_won(self, entry: LedgerEntry) -> str:
        return format_won(entry.amount)

    @admin.display(description=_("Balance after"))
    def balance_after_won(self, entry: LedgerEntry) -> str:
        return format_won(entry.balance_after)


@admin.register(Wallet)
class WalletAdmin(ReadOnlyAdmin):
    list_display = ["customer", "balance_won", "updated"]
    search_fields = ["user__email"]
    list_select_related = ["user"]
    fields = ["user", "balance_won", "updated_at"]
    readonly_fields = fields
    inlines = [LedgerEntryInline]

    @admin.display(description=_("Customer"), ordering="user__email")
    def customer(self, wallet: Wallet) -> str:
        return breakable_email(wallet.user.email)

    @admin.display(description=_("Updated"), ordering="updated_at")
    def updated(self, wallet: Wallet) -> str:
        return local_time(wallet.updated_at)

    @admin.display(description=_("Balance"), ordering="balance")
    def balance_won(self, wallet: Wallet) -> str:
        return format_won(wallet.balance)


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    # Who did it (created_by) and the payment are on the entry's own page: the list stays
    # narrow enough for a laptop.
    list_display = ["id", "customer", "kind", "amount_won", "balance_after_won", "created"]
    list_filter = ["kind", "created_at"]
    search_fields = ["wallet__user__email"]
    list_select_related = ["wallet__user"]
    show_full_result_count = False
    fields = [
        "wallet",
        "kind",
        "amount_won",
        "balance_after_won",
        "payment",
        "cancellation",
        "created_by",
        "created_at",
    ]
    readonly_fields = fields

    @admin.display(description=_("Customer"), ordering="wallet__user__email")
    def customer(self, entry: LedgerEntry) -> str:
        return breakable_email(entry.wallet.user.email)

    @admin.display(description=_("Created"), ordering="created_at")
    def created(self, entry: LedgerEntry) -> str:
        return local_time(entry.created_at)

    @admin.display(description=_("Amount"), ordering="amount")
    def amount_won(self, entry: LedgerEntry) -> str:
        return format_won(entry.amount)

    @admin.display(description=_("Balance after"))
    def balance_after_won(self, entry: LedgerEntry) -> str:
        return format_won(entry.balance_after)


class CancellationItemInline(ReadOnlyInline):
    model = CancellationItem
    fields = ["item", "price", "fee", "booking_fee", "booking_fee_refunded", "refund"]
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("item__seat")


@admin.register(Cancellation)
class CancellationAdmin(ReadOnlyAdmin):
    """Who cancelled or refunded which seats, when, how much and why."""

    list_display = ["id", "reservation_link", "kind", "by", "amount_won", "rule", "created"]
    list_filter = ["kind", "created_at"]
    search_fields = ["reservation__id", "reservation__user__email", "created_by__email"]
    list_select_related = ["created_by"]
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

    @admin.display(description=_("Back to the wallet"), ordering="amount")
    def amount_won(self, cancellation: Cancellation) -> str:
        return format_won(cancellation.amount)

    @admin.display(description=_("Reservation"), ordering="reservation_id")
    def reservation_link(self, cancellation: Cancellation) -> str:
        url = reverse("admin:reservations_reservation_change", args=[cancellation.reservation_id])
        return format_html('<a href="{}">{}</a>', url, cancellation.reservation_id)

    @admin.display(description=_("By"), ordering="created_by__email")
    def by(self, cancellation: Cancellation) -> str:
        return breakable_email(cancellation.created_by.email)

    @admin.display(description=_("Created"), ordering="created_at")
    def created(self, cancellation: Cancellation) -> str:
        return local_time(cancellation.created_at)


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

    @admin.display(description=_("Refunded"))
    def progress(self, job: RefundJob) -> str:
        return gettext("%(refunded)s of %(total)s") % {"refunded": job.refunded, "total": job.total}
