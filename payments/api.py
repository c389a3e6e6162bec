from django.utils.translation import gettext as _
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    extend_schema,
    extend_schema_view,
)
from rest_framework import generics, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from config.errors import ValidationFailed
from config.idempotency import IDEMPOTENCY_PARAMETER, idempotent
from config.money import WonField
from config.openapi import error_responses
from config.serializers import KnownFieldsOnly

from . import cancellations, services
from .fees import Quote
from .models import Cancellation, LedgerEntry, Payment, Wallet


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
    amount = serializers.IntegerField(help_text="Won: the tickets and their booking fees.")
    booking_fee = serializers.IntegerField(help_text="Won: the booking fees within `amount`.")
    refunded_amount = serializers.IntegerField(
        help_text="Won returned to the wallet so far by cancellations and refunds."
    )

    class Meta:
        model = Payment
        fields = [
            "id",
            "reservation_id",
            "amount",
            "booking_fee",
            "refunded_amount",
            "status",
            "created_at",
            "refunded_at",
        ]


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
    "amount": 334000,
    "booking_fee": 4000,
    "refunded_amount": 0,
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


# --- Cancelling a paid booking ----------------------------------------------------------


class SeatQuoteSerializer(serializers.Serializer):
    seat_id = serializers.IntegerField()
    price = serializers.IntegerField(help_text="Won, as paid.")
    booking_fee = serializers.IntegerField(help_text="Won, as paid.")
    fee = serializers.IntegerField(help_text="Won: the cancellation fee kept.")
    booking_fee_refunded = serializers.IntegerField(
        help_text="Won: the booking fee comes back only on the day of payment."
    )
    refund = serializers.IntegerField(help_text="Won back: price - fee + booking fee refunded.")


class QuoteSerializer(serializers.Serializer):
    reservation_id = serializers.IntegerField()
    cancellable = serializers.BooleanField(help_text="False past the cut-off.")
    rule = serializers.CharField(help_text="The policy rule applied, for people.")
    valid_until = serializers.DateTimeField(
        help_text="The quote holds until then (a new day, or the cut-off, changes it)."
    )
    seats = SeatQuoteSerializer(many=True)
    refund = serializers.IntegerField(help_text="Won: the tickets' prices.")
    fee = serializers.IntegerField(help_text="Won: the cancellation fees kept.")
    booking_fee_refunded = serializers.IntegerField()
    booking_fee_kept = serializers.IntegerField()
    amount = serializers.IntegerField(help_text="Won back to the wallet.")


def quote_payload(reservation_id: int, quote: Quote) -> dict:
    return {
        "reservation_id": reservation_id,
        "cancellable": not quote.closed,
        "rule": quote.rule,
        "valid_until": serializers.DateTimeField().to_representation(quote.valid_until),
        "seats": [
            {
                "seat_id": seat.seat_id,
                "price": seat.price,
                "booking_fee": seat.booking_fee,
                "fee": seat.fee,
                "booking_fee_refunded": seat.booking_fee_refunded,
                "refund": seat.refund,
            }
            for seat in quote.seats
        ],
        "refund": quote.refund,
        "fee": quote.fee,
        "booking_fee_refunded": quote.booking_fee_refunded,
        "booking_fee_kept": quote.booking_fee_kept,
        "amount": quote.amount,
    }


class CancellationRequestSerializer(KnownFieldsOnly):
    """Unknown fields are refused: `seat_id` for `seat_ids` would cancel every seat."""

    seat_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**62),
        required=False,
        min_length=1,
        max_length=4,
        help_text="The seats to cancel; all the booking's seats still paid when left out.",
    )


class CancellationSerializer(serializers.ModelSerializer):
    seats = serializers.SerializerMethodField()
    reservation_status = serializers.CharField(source="reservation.status")

    class Meta:
        model = Cancellation
        fields = [
            "id",
            "reservation_id",
            "reservation_status",
            "kind",
            "rule",
            "seats",
            "refund",
            "fee",
            "booking_fee_refunded",
            "booking_fee_kept",
            "amount",
            "created_at",
        ]

    def get_seats(self, cancellation: Cancellation) -> list[dict]:
        return [
            {
                "seat_id": item.item.seat_id,
                "price": item.price,
                "booking_fee": item.booking_fee,
                "fee": item.fee,
                "booking_fee_refunded": item.booking_fee_refunded,
                "refund": item.refund,
            }
            for item in cancellation.items.select_related("item")
        ]


_QUOTE_EXAMPLE = {
    "reservation_id": 314,
    "cancellable": True,
    "rule": "D-5: 20 % of the price.",
    "valid_until": "2026-12-16T00:00:00+09:00",
    "seats": [
        {
            "seat_id": 101,
            "price": 110000,
            "booking_fee": 2000,
            "fee": 22000,
            "booking_fee_refunded": 0,
            "refund": 88000,
        }
    ],
    "refund": 110000,
    "fee": 22000,
    "booking_fee_refunded": 0,
    "booking_fee_kept": 2000,
    "amount": 88000,
}


class ReservationCancellationView(APIView):
    @extend_schema(
        operation_id="reservations_cancellation_quote",
        summary="What cancelling my paid booking gives back",
        description="Per seat: price, the fee kept by the concert's cancellation policy, the "
        "booking fee (back only on the day of payment) and the refund; the rule applied and "
        "until when the quote holds. `seat_ids` (comma-separated) quotes some of the seats.",
        parameters=[
            OpenApiParameter(
                "seat_ids",
                str,
                OpenApiParameter.QUERY,
                required=False,
                description="e.g. `101,102`; all seats still paid when left out.",
            )
        ],
        responses={
            200: QuoteSerializer,
            **error_responses(
                "validation_error", "not_authenticated", "not_found", "reservation_not_cancellable"
            ),
        },
        examples=[OpenApiExample("quote", value=_QUOTE_EXAMPLE, response_only=True)],
        tags=["reservations"],
    )
    def get(self, request, reservation_id: int):
        found = cancellations.cancellation_quote(
            user=request.user,
            reservation_id=reservation_id,
            seat_ids=_seat_ids_from_query(request.query_params.get("seat_ids")),
        )
        return Response(quote_payload(reservation_id, found.quote))

    @extend_schema(
        operation_id="reservations_cancel_paid",
        summary="Cancel my paid booking, all or some seats",
        description="Refunds by the concert's cancellation policy to the wallet (ledger lines: "
        "the tickets back, the cancellation fee kept, the booking fee back on the day of "
        "payment), and puts the seats back on sale at once. With every seat cancelled the "
        "booking reads `cancelled`; otherwise it stays `confirmed` with fewer seats. After the "
        "cut-off (17:00 the day before the show by default): 409 `cancellation_closed`. Send "
        "an `Idempotency-Key`: a retry gets the first answer, and money moves once.",
        parameters=[IDEMPOTENCY_PARAMETER],
        request=CancellationRequestSerializer,
        responses={
            201: CancellationSerializer,
            **error_responses(
                "validation_error",
                "not_authenticated",
                "not_found",
                "reservation_not_cancellable",
                "cancellation_closed",
                "idempotency_in_progress",
                "idempotency_key_reused",
                "service_unavailable",
            ),
        },
        examples=[
            OpenApiExample("one seat", value={"seat_ids": [101]}, request_only=True),
            OpenApiExample(
                "cancelled",
                value={
                    "id": 7,
                    "reservation_id": 314,
                    "reservation_status": "confirmed",
                    "kind": "customer",
                    **{k: v for k, v in _QUOTE_EXAMPLE.items() if k not in ("cancellable",)},
                    "created_at": "2026-12-15T10:12:00+09:00",
                },
                response_only=True,
            ),
        ],
        tags=["reservations"],
    )
    @idempotent
    def post(self, request, reservation_id: int):
        payload = CancellationRequestSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        cancellation = cancellations.reservation_cancel_paid(
            user=request.user,
            reservation_id=reservation_id,
            seat_ids=payload.validated_data.get("seat_ids"),
        )
        return Response(CancellationSerializer(cancellation).data, status=status.HTTP_201_CREATED)


def _seat_ids_from_query(raw: str | None) -> list[int] | None:
    if raw is None or not raw.strip():
        return None
    try:
        seat_ids = [int(part) for part in raw.split(",")]
    except ValueError:
        raise ValidationFailed.on("seat_ids", _("Seat ids, separated by commas.")) from None
    if not 1 <= len(seat_ids) <= 4 or min(seat_ids) < 1:
        raise ValidationFailed.on("seat_ids", _("1 to 4 seat ids of the booking."))
    return seat_ids
