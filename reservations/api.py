from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import generics, serializers, status
from rest_framework.response import Response
from rest_framework.throttling import UserRateThrottle
from rest_framework.views import APIView

from config.money import WonField
from config.openapi import error_responses
from config.serializers import KnownFieldsOnly
from queueing.gate import QUEUE_TOKEN_PARAMETER, queue_token_of

from . import selectors, services, waitlist
from .models import MAX_SEATS_PER_RESERVATION, Reservation, WaitlistEntry


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
            "source",
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
    "source": "queue",
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


# --- The waitlist ----------------------------------------------------------------------------


class WaitlistThrottle(UserRateThrottle):
    """Joining and leaving the waitlist, per customer, at settings.WAITLIST_THROTTLE_RATE:
    the waitlist is not behind the queue, so this is what keeps a macro off it."""

    scope = "waitlist"

    def get_rate(self) -> str:
        return settings.WAITLIST_THROTTLE_RATE

    def wait(self) -> float:
        wait = super().wait()
        return self.duration if wait is None else wait


class WaitlistJoinSerializer(KnownFieldsOnly):
    quantity = serializers.IntegerField(
        min_value=1,
        max_value=MAX_SEATS_PER_RESERVATION,
        help_text=f"How many seats, offered together: 1 to {MAX_SEATS_PER_RESERVATION}.",
    )
    grades = serializers.ListField(
        child=serializers.CharField(max_length=20),
        allow_null=True,
        required=False,
        default=None,
        min_length=1,
        max_length=20,
        help_text="The grades you would take, the one you like best first; null: any.",
    )
    auto_pay = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Pay an offer from your wallet as soon as it is made, if the balance "
        "covers it and it costs at most `max_total`; otherwise it stays an offer.",
    )
    max_total = WonField(
        required=False,
        allow_null=True,
        default=None,
        help_text="Won: the most an auto-paid offer may cost, booking fees included. "
        "Required with `auto_pay`.",
    )

    def validate_grades(self, grades: list[str] | None) -> list[str] | None:
        if grades is not None and len(set(grades)) != len(grades):
            raise serializers.ValidationError("Each grade may appear once.")
        return grades


class WaitlistEventSerializer(serializers.Serializer):
    kind = serializers.CharField(
        help_text="offered, taken (paid), lapsed, declined, auto_pay_failed."
    )
    reservation_id = serializers.IntegerField(allow_null=True)
    details = serializers.DictField()
    at = serializers.DateTimeField(source="created_at")


class WaitlistOfferSerializer(serializers.Serializer):
    reservation_id = serializers.IntegerField(source="id")
    status = serializers.SerializerMethodField(
        help_text="The reservation's status: held (yours to pay until `expires_at`), "
        "confirmed (paid), expired, cancelled."
    )
    seats = ReservationSeatSerializer(source="seat_items", many=True)
    amount_due = serializers.SerializerMethodField(help_text="Won: prices and booking fees.")
    expires_at = serializers.DateTimeField()

    def get_status(self, offer: Reservation) -> str:
        return selectors.reservation_effective_status(offer, timezone.now())

    def get_amount_due(self, offer: Reservation) -> int:
        return offer.total_price + offer.booking_fee_total


class WaitlistEntrySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.SerializerMethodField(
        help_text="waiting -> offered -> bought (paid) | lapsed (the offer ran out) | left "
        "(you left, or declined the offer)."
    )
    schedule = ReservationScheduleSerializer()
    quantity = serializers.IntegerField()
    grades = serializers.ListField(child=serializers.CharField(), allow_null=True)
    auto_pay = serializers.BooleanField()
    max_total = serializers.IntegerField(allow_null=True)
    places = serializers.SerializerMethodField(
        help_text="While waiting: your place in line for each grade you wait for (1: next)."
    )
    offer = WaitlistOfferSerializer(allow_null=True)
    events = WaitlistEventSerializer(many=True, source="events.all")
    joined_at = serializers.DateTimeField()

    def get_status(self, entry: WaitlistEntry) -> str:
        return selectors.waitlist_entry_effective_status(entry, timezone.now())

    def get_places(self, entry: WaitlistEntry) -> dict[str, int]:
        return selectors.waitlist_places(entry)


_WAITLIST_ENTRY_EXAMPLE = {
    "id": 12,
    "status": "waiting",
    "schedule": _RESERVATION_EXAMPLE["schedule"],
    "quantity": 2,
    "grades": ["VIP", "R"],
    "auto_pay": False,
    "max_total": None,
    "places": {"VIP": 3, "R": 1},
    "offer": None,
    "events": [],
    "joined_at": "2026-12-01T21:00:00+09:00",
}

_WAITLIST_OFFERED_EXAMPLE = {
    **_WAITLIST_ENTRY_EXAMPLE,
    "status": "offered",
    "places": {},
    "offer": {
        "reservation_id": 420,
        "status": "held",
        "seats": _RESERVATION_EXAMPLE["seats"],
        "amount_due": 334000,
        "expires_at": "2026-12-02T10:30:00+09:00",
    },
    "events": [
        {
            "kind": "offered",
            "reservation_id": 420,
            "details": {
                "seat_ids": [101, 102],
                "amount_due": 334000,
                "expires_at": "2026-12-02T10:30:00+09:00",
            },
            "at": "2026-12-02T10:00:00+09:00",
        }
    ],
}


class WaitlistJoinView(APIView):
    throttle_classes = [WaitlistThrottle]

    @extend_schema(
        operation_id="waitlist_join",
        summary="Join the waitlist of a sold-out performance (취소표 대기)",
        description="Wait for `quantity` seats of `grades` (null: any). Seats that come back "
        "(lapsed holds, cancellations, refunds) are offered to waiting customers in the order "
        "they joined: the seats are held for you (a reservation with `source: waitlist`) for "
        "the concert's offer time, 30 minutes by default, and you pay them with the usual "
        "payment call; no queue token is needed. Only while fewer than `quantity` such seats "
        "are on sale (otherwise 409 `seats_available`: hold them). One live entry per "
        "performance: asking again for the same answers 200 with it. The seats waited for "
        "count against the ticket limit.",
        request=WaitlistJoinSerializer,
        responses={
            201: WaitlistEntrySerializer,
            200: WaitlistEntrySerializer,
            **error_responses(
                "validation_error",
                "not_authenticated",
                "not_found",
                "seats_available",
                "waitlist_entry_exists",
                "waitlist_closed",
                "ticket_limit_reached",
                "sales_closed",
                "throttled",
                "service_unavailable",
            ),
        },
        examples=[
            OpenApiExample(
                "join", value={"quantity": 2, "grades": ["VIP", "R"]}, request_only=True
            ),
            OpenApiExample(
                "join with auto-pay",
                value={"quantity": 1, "grades": None, "auto_pay": True, "max_total": 200000},
                request_only=True,
            ),
            OpenApiExample("waiting", value=_WAITLIST_ENTRY_EXAMPLE, response_only=True),
        ],
        tags=["waitlist"],
    )
    def post(self, request, schedule_id: int):
        payload = WaitlistJoinSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        entry, created = waitlist.waitlist_join(
            user=request.user, schedule_id=schedule_id, **payload.validated_data
        )
        entry = selectors.waitlist_list_for_user(user_id=request.user.id).get(id=entry.id)
        return Response(
            WaitlistEntrySerializer(entry).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


@extend_schema_view(
    get=extend_schema(
        operation_id="waitlist_list",
        summary="My waitlist entries, places in line and offers",
        responses={
            200: WaitlistEntrySerializer(many=True),
            **error_responses("not_authenticated", "validation_error", "not_found"),
        },
        examples=[OpenApiExample("offered", value=_WAITLIST_OFFERED_EXAMPLE, response_only=True)],
        tags=["waitlist"],
    )
)
class WaitlistListView(generics.ListAPIView):
    serializer_class = WaitlistEntrySerializer

    def get_queryset(self):
        return selectors.waitlist_list_for_user(user_id=self.request.user.id)


class WaitlistEntryView(APIView):
    throttle_classes = [WaitlistThrottle]

    @extend_schema(
        operation_id="waitlist_leave",
        summary="Leave the waitlist (or decline its offer)",
        description="A held offer is declined: its seats go to the next in line, or on sale. "
        "Leaving twice, or an entry that has ended, is harmless.",
        responses={
            204: None,
            **error_responses("not_authenticated", "not_found", "throttled"),
        },
        tags=["waitlist"],
    )
    def delete(self, request, entry_id: int):
        waitlist.waitlist_leave(user=request.user, entry_id=entry_id)
        return Response(status=status.HTTP_204_NO_CONTENT)
