from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import generics, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from config.idempotency import IDEMPOTENCY_PARAMETER, idempotent
from config.money import WonField
from config.openapi import error_responses

from . import services
from .models import LedgerEntry, Payment, Wallet


class WalletSerializer(serializers.Serializer):
    balance = serializers.IntegerField(help_text="Won (KRW).")
    updated_at = serializers.DateTimeField(
        allow_null=True, help_text="Null before the first charge."
    )


class LedgerEntrySerializer(serializers.ModelSerializer):
    reservation_id = serializers.IntegerField(
        source="payment.reservation_id", allow_null=True, default=None
    )

    class Meta:
        model = LedgerEntry
        fields = ["id", "kind", "amount", "balance_after", "reservation_id", "created_at"]


class PaymentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Payment
        fields = ["id", "reservation_id", "amount", "status", "created_at", "refunded_at"]


class ChargeRequestSerializer(serializers.Serializer):
    amount = WonField(
        min_value=1,
        max_value=services.MAX_CHARGE_WON,
        help_text=f"Won, 1 to {services.MAX_CHARGE_WON:,} per charge.",
    )


class ChargeResponseSerializer(serializers.Serializer):
    transaction = LedgerEntrySerializer()
    balance = serializers.IntegerField()


# Answers of the write paths go through serializers built once per process: a serializer
# builds its fields anew for every instance, and to_representation() of a built one keeps no
# state between calls.
PAYMENT_ANSWER = PaymentSerializer()
LEDGER_ENTRY_ANSWER = LedgerEntrySerializer()


_ENTRY_EXAMPLE = {
    "id": 12,
    "kind": "charge",
    "amount": 500000,
    "balance_after": 500000,
    "reservation_id": None,
    "created_at": "2026-12-01T19:58:00+09:00",
}
_PAYMENT_EXAMPLE = {
    "id": 99,
    "reservation_id": 314,
    "amount": 330000,
    "status": "completed",
    "created_at": "2026-12-01T20:06:02+09:00",
    "refunded_at": None,
}


class WalletView(APIView):
    @extend_schema(
        operation_id="wallet_retrieve",
        summary="My wallet balance",
        responses={200: WalletSerializer, **error_responses("not_authenticated")},
        examples=[
            OpenApiExample(
                "wallet",
                value={"balance": 170000, "updated_at": "2026-12-01T20:06:02+09:00"},
                response_only=True,
            )
        ],
        tags=["wallet"],
    )
    def get(self, request):
        wallet = Wallet.objects.filter(user=request.user).first() or Wallet(user=request.user)
        return Response(WalletSerializer(wallet).data)  # a read creates nothing


@extend_schema_view(
    get=extend_schema(
        operation_id="wallet_transactions",
        summary="My wallet ledger",
        description="Every charge, payment and refund, newest first. The balance is always "
        "the sum of these amounts.",
        responses={
            200: LedgerEntrySerializer(many=True),
            **error_responses("not_authenticated", "validation_error", "not_found"),
        },
        examples=[OpenApiExample("ledger", value=_ENTRY_EXAMPLE, response_only=True)],
        tags=["wallet"],
    )
)
class WalletTransactionsView(generics.ListAPIView):
    serializer_class = LedgerEntrySerializer

    def get_queryset(self):
        return (
            LedgerEntry.objects.filter(wallet__user=self.request.user)
            .select_related("payment")
            .order_by("-id")
        )


class WalletChargeView(APIView):
    @extend_schema(
        operation_id="wallet_charge",
        summary="Top up my wallet",
        parameters=[IDEMPOTENCY_PARAMETER],
        request=ChargeRequestSerializer,
        responses={
            201: ChargeResponseSerializer,
            **error_responses(
                "validation_error",
                "not_authenticated",
                "idempotency_in_progress",
                "idempotency_key_reused",
                "service_unavailable",
            ),
        },
        examples=[
            OpenApiExample("charge", value={"amount": 500000}, request_only=True),
            OpenApiExample(
                "charged",
                value={"transaction": _ENTRY_EXAMPLE, "balance": 500000},
                response_only=True,
            ),
        ],
        tags=["wallet"],
    )
    @idempotent
    def post(self, request):
        payload = ChargeRequestSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        entry = services.wallet_charge(user=request.user, **payload.validated_data)
        return Response(
            {
                "transaction": LEDGER_ENTRY_ANSWER.to_representation(entry),
                "balance": entry.balance_after,
            },
            status=status.HTTP_201_CREATED,
        )


@extend_schema_view(
    get=extend_schema(
        operation_id="payments_list",
        summary="My payments",
        responses={
            200: PaymentSerializer(many=True),
            **error_responses("not_authenticated", "validation_error", "not_found"),
        },
        examples=[OpenApiExample("payments", value=_PAYMENT_EXAMPLE, response_only=True)],
        tags=["wallet"],
    )
)
class PaymentListView(generics.ListAPIView):
    serializer_class = PaymentSerializer

    def get_queryset(self):
        return Payment.objects.filter(user=self.request.user).order_by("-id")


class ReservationPaymentView(APIView):
    @extend_schema(
        operation_id="reservations_pay",
        summary="Pay a hold from the wallet",
        description="Debits the wallet once and confirms the reservation once, whatever the "
        "retries: send an `Idempotency-Key` and a retry gets the first answer back. A hold "
        "that ran out can still be paid while nobody has taken its seats.",
        parameters=[IDEMPOTENCY_PARAMETER],
        request=None,
        responses={
            201: PaymentSerializer,
            **error_responses(
                "validation_error",
                "not_authenticated",
                "insufficient_balance",
                "not_found",
                "reservation_not_payable",
                "sales_closed",
                "idempotency_in_progress",
                "hold_expired",
                "idempotency_key_reused",
                "service_unavailable",
            ),
        },
        examples=[OpenApiExample("paid", value=_PAYMENT_EXAMPLE, response_only=True)],
        tags=["reservations"],
    )
    @idempotent
    def post(self, request, reservation_id: int):
        payment = services.payment_create(user=request.user, reservation_id=reservation_id)
        return Response(PAYMENT_ANSWER.to_representation(payment), status=status.HTTP_201_CREATED)
