from django.utils import timezone
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import generics, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from config.openapi import error_responses
from queueing.gate import QUEUE_TOKEN_PARAMETER, queue_token_of

from . import selectors, services
from .models import MAX_SEATS_PER_RESERVATION, Reservation


class HoldRequestSerializer(serializers.Serializer):
    schedule_id = serializers.IntegerField(min_value=1, max_value=2**62)
    seat_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**62),
        min_length=1,
        max_length=MAX_SEATS_PER_RESERVATION,
        help_text=f"1 to {MAX_SEATS_PER_RESERVATION} different seats of the schedule.",
    )

    def validate_seat_ids(self, seat_ids: list[int]) -> list[int]:
        if len(set(seat_ids)) != len(seat_ids):
            raise serializers.ValidationError("Each seat may appear once.")
        return seat_ids


class ReservationSeatSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="seat.id")
    section = serializers.CharField(source="seat.section")
    row = serializers.IntegerField(source="seat.row")
    number = serializers.IntegerField(source="seat.number")
    grade = serializers.CharField(source="seat.grade")
    price = serializers.IntegerField(help_text="Won, as held.")
    booking_fee = serializers.IntegerField(help_text="Won per ticket, paid with the price.")
    cancelled_at = serializers.DateTimeField(
        allow_null=True, help_text="When this seat of a paid booking was cancelled or refunded."
    )


class ReservationScheduleSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    concert_id = serializers.IntegerField()
    concert_title = serializers.CharField(source="concert.title")
    starts_at = serializers.DateTimeField()


class ReservationSerializer(serializers.ModelSerializer):
    status = serializers.SerializerMethodField(
        help_text="held -> confirmed (paid) | expired | cancelled; confirmed -> cancelled (you "
        "cancelled every seat) | refunded (by the operator). A hold past `expires_at` reads "
        "`expired` at once, and can no longer be paid."
    )
    schedule = ReservationScheduleSerializer()
    seats = ReservationSeatSerializer(source="seat_items", many=True)
    total_price = serializers.IntegerField(help_text="Won: the tickets' prices.")
    booking_fee = serializers.IntegerField(
        source="booking_fee_total", help_text="Won: the booking fee of every ticket."
    )
    amount_due = serializers.SerializerMethodField(help_text="Won: what the payment takes.")

    class Meta:
        model = Reservation
        fields = [
            "id",
            "status",
            "schedule",
            "seats",
            "total_price",
            "booking_fee",
            "amount_due",
            "expires_at",
            "created_at",
        ]

    def get_amount_due(self, reservation: Reservation) -> int:
        return reservation.total_price + reservation.booking_fee_total

    def get_status(self, reservation: Reservation) -> str:
        return selectors.reservation_effective_status(reservation, timezone.now())


# Answers of the write paths go through serializers built once per process: a serializer
# builds its fields anew for every instance (~0.3 ms for a reservation with its nested ones),
# and to_representation() of a built one keeps no state between calls.
RESERVATION_ANSWER = ReservationSerializer()

_RESERVATION_EXAMPLE = {
    "id": 314,
    "status": "held",
    "schedule": {
        "id": 7,
        "concert_id": 1,
        "concert_title": "Blue Hour World Tour",
        "starts_at": "2026-12-20T19:00:00+09:00",
    },
    "seats": [
        {
            "id": 101,
            "section": "A",
            "row": 1,
            "number": 1,
            "grade": "VIP",
            "price": 165000,
            "booking_fee": 2000,
            "cancelled_at": None,
        },
        {
            "id": 102,
            "section": "A",
            "row": 1,
            "number": 2,
            "grade": "VIP",
            "price": 165000,
            "booking_fee": 2000,
            "cancelled_at": None,
        },
    ],
    "total_price": 330000,
    "booking_fee": 4000,
    "amount_due": 334000,
    "expires_at": "2026-12-01T20:09:30+09:00",
    "created_at": "2026-12-01T20:04:30+09:00",
}


@extend_schema_view(
    get=extend_schema(
        operation_id="reservations_list",
        summary="My reservations",
        responses={
            200: ReservationSerializer(many=True),
            **error_responses("not_authenticated", "validation_error", "not_found"),
        },
        examples=[OpenApiExample("reservations", value=_RESERVATION_EXAMPLE, response_only=True)],
        tags=["reservations"],
    )
)
class ReservationListView(generics.ListAPIView):
    serializer_class = ReservationSerializer

    def get_queryset(self):
        return selectors.reservation_list_for_user(user_id=self.request.user.id)

    @extend_schema(
        operation_id="reservations_hold",
        summary="Hold seats",
        description="Holds 1-4 seats of one schedule for the concert's hold time (5 minutes "
        "by default): all of them or none. Needs an admitted X-Queue-Token of the concert. A "
        "customer may hold and own at most the concert's ticket limit (4 by default) of a "
        "performance, across bookings: over it, 409 `ticket_limit_reached`. Taken seats -> 409 "
        "`seats_unavailable` with their ids in `details.seat_ids`.",
        parameters=[QUEUE_TOKEN_PARAMETER],
        request=HoldRequestSerializer,
        responses={
            201: ReservationSerializer,
            **error_responses(
                "validation_error",
                "not_authenticated",
                "queue_token_invalid",
                "queue_not_admitted",
                "not_found",
                "seats_unavailable",
                "ticket_limit_reached",
                "sales_closed",
                "queue_token_expired",
                "service_unavailable",
            ),
        },
        examples=[
            OpenApiExample(
                "hold", value={"schedule_id": 7, "seat_ids": [101, 102]}, request_only=True
            ),
            OpenApiExample("held", value=_RESERVATION_EXAMPLE, response_only=True),
        ],
        tags=["reservations"],
    )
    def post(self, request):
        payload = HoldRequestSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        reservation = services.reservation_hold(  # with everything the answer shows
            user=request.user,
            queue_token=queue_token_of(request),
            **payload.validated_data,
        )
        return Response(
            RESERVATION_ANSWER.to_representation(reservation), status=status.HTTP_201_CREATED
        )


class ReservationDetailView(APIView):
    @extend_schema(
        operation_id="reservations_retrieve",
        summary="One of my reservations",
        responses={
            200: ReservationSerializer,
            **error_responses("not_authenticated", "not_found"),
        },
        examples=[OpenApiExample("reservation", value=_RESERVATION_EXAMPLE, response_only=True)],
        tags=["reservations"],
    )
    def get(self, request, reservation_id: int):
        reservation = selectors.reservation_get_for_user(
            user_id=request.user.id, reservation_id=reservation_id
        )
        return Response(ReservationSerializer(reservation).data)

    @extend_schema(
        operation_id="reservations_cancel",
        summary="Cancel a hold",
        description="Its seats go back on sale at once. Cancelling twice is harmless; a paid, "
        "expired or refunded reservation cannot be cancelled (409).",
        responses={
            204: None,
            **error_responses("not_authenticated", "not_found", "reservation_not_cancellable"),
        },
        tags=["reservations"],
    )
    def delete(self, request, reservation_id: int):
        services.reservation_cancel(user=request.user, reservation_id=reservation_id)
        return Response(status=status.HTTP_204_NO_CONTENT)
