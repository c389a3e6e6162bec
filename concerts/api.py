from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.utils import (
    OpenApiExample,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import generics, serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from config.openapi import error_responses
from queueing.gate import QUEUE_TOKEN_PARAMETER, queue_require_admitted, queue_token_of
from reservations.selectors import waitlist_waited_grades

from . import selectors
from .cache import catalog_cached, catalog_key, seat_map_json
from .models import Concert, Schedule, SeatStatus


class ConcertSerializer(serializers.ModelSerializer):
    first_performance_at = serializers.DateTimeField(allow_null=True, read_only=True)
    last_performance_at = serializers.DateTimeField(allow_null=True, read_only=True)
    schedule_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Concert
        fields = [
            "id",
            "title",
            "artist",
            "venue",
            "description",
            "sale_opens_at",
            "first_performance_at",
            "last_performance_at",
            "schedule_count",
        ]


class ScheduleSerializer(serializers.ModelSerializer):
    total_seats = serializers.IntegerField(read_only=True)
    available_seats = serializers.IntegerField(
        read_only=True, help_text="Seats free to hold now (a few seconds stale at most)."
    )
    min_price = serializers.IntegerField(read_only=True, allow_null=True, help_text="Won.")
    max_price = serializers.IntegerField(read_only=True, allow_null=True, help_text="Won.")

    class Meta:
        model = Schedule
        fields = [
            "id",
            "concert_id",
            "starts_at",
            "ends_at",
            "total_seats",
            "available_seats",
            "min_price",
            "max_price",
        ]


class SeatMapScheduleSerializer(serializers.ModelSerializer):
    concert_title = serializers.CharField(source="concert.title", read_only=True)
    booking_fee = serializers.IntegerField(
        source="concert.booking_fee",
        read_only=True,
        help_text="Won per ticket, paid with the seat's price.",
    )
    ticket_limit = serializers.IntegerField(
        source="concert.ticket_limit",
        read_only=True,
        help_text="The most seats one customer may hold and own of this performance.",
    )

    class Meta:
        model = Schedule
        fields = [
            "id",
            "concert_id",
            "concert_title",
            "starts_at",
            "ends_at",
            "booking_fee",
            "ticket_limit",
        ]


SeatMapSerializer = inline_serializer(
    name="SeatMap",
    fields={
        "schedule": SeatMapScheduleSerializer(),
        "available_seats": serializers.IntegerField(),
        "total_seats": serializers.IntegerField(),
        "seats": inline_serializer(
            name="SeatMapSeat",
            many=True,
            fields={
                "id": serializers.IntegerField(),
                "section": serializers.CharField(),
                "row": serializers.IntegerField(),
                "number": serializers.IntegerField(),
                "grade": serializers.CharField(),
                "price": serializers.IntegerField(help_text="Won."),
                "status": serializers.ChoiceField(choices=SeatStatus.choices),
            },
        ),
    },
)

_CONCERT_EXAMPLE = {
    "id": 1,
    "title": "Blue Hour World Tour",
    "artist": "NOVA",
    "venue": "KSPO Dome, Seoul",
    "description": "Two nights only.",
    "sale_opens_at": "2026-12-01T20:00:00+09:00",
    "first_performance_at": "2026-12-20T19:00:00+09:00",
    "last_performance_at": "2026-12-21T18:00:00+09:00",
    "schedule_count": 2,
}
_SCHEDULE_EXAMPLE = {
    "id": 7,
    "concert_id": 1,
    "starts_at": "2026-12-20T19:00:00+09:00",
    "ends_at": "2026-12-20T21:30:00+09:00",
    "total_seats": 150,
    "available_seats": 148,
    "min_price": 99000,
    "max_price": 165000,
}


def _page_example(name: str, item: dict) -> OpenApiExample:
    # One item: drf-spectacular wraps list examples in the pagination envelope itself.
    return OpenApiExample(name, value=item, response_only=True)


class CachedCatalogListView(generics.ListAPIView):
    """A public, paginated catalog list answered from Redis while fresh.

    The key holds only validated page parameters, so odd query strings cannot fill the cache,
    and the site root, because `next`/`previous` are absolute links.
    """

    authentication_classes: list = []  # public: no token lookup, and a stale token is no error
    permission_classes = [AllowAny]
    cache_name = ""
    cache_seconds_setting = ""  # name of the setting with this list's cache lifetime

    def list(self, request, *args, **kwargs):
        page, page_size = self.paginator.page_params(request)
        key = catalog_key(
            self.cache_name, *kwargs.values(), request.build_absolute_uri("/"), page, page_size
        )
        build = super().list
        timeout = getattr(settings, self.cache_seconds_setting)
        return Response(catalog_cached(key, timeout, lambda: build(request, *args, **kwargs).data))


@extend_schema_view(
    get=extend_schema(
        operation_id="concerts_list",
        summary="List concerts",
        description="Published concerts, the soonest performance first. Cached; operator changes "
        "show at once.",
        responses={
            200: ConcertSerializer(many=True),
            **error_responses("validation_error", "not_found"),
        },
        examples=[_page_example("concerts", _CONCERT_EXAMPLE)],
        tags=["catalog"],
    )
)
class ConcertListView(CachedCatalogListView):
    serializer_class = ConcertSerializer
    cache_name = "concerts"
    cache_seconds_setting = "CATALOG_CACHE_SECONDS"

    def get_queryset(self):
        return selectors.concert_list()


@extend_schema_view(
    get=extend_schema(
        operation_id="concerts_schedules",
        summary="Dates of a concert, with seat counts",
        description="`available_seats` counts seats free to hold right now, expired holds "
        "included; it may lag by a couple of seconds.",
        responses={
            200: ScheduleSerializer(many=True),
            **error_responses("validation_error", "not_found"),
        },
        examples=[_page_example("schedules", _SCHEDULE_EXAMPLE)],
        tags=["catalog"],
    )
)
class ScheduleListView(CachedCatalogListView):
    serializer_class = ScheduleSerializer
    cache_name = "schedules"
    cache_seconds_setting = "SEAT_COUNTS_CACHE_SECONDS"

    def get_queryset(self):
        return selectors.schedule_list_with_seat_counts(concert_id=self.kwargs["concert_id"])


class ConcertDetailView(generics.GenericAPIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    serializer_class = ConcertSerializer

    @extend_schema(
        operation_id="concerts_retrieve",
        summary="One concert",
        responses={200: ConcertSerializer, **error_responses("not_found")},
        examples=[OpenApiExample("concert", value=_CONCERT_EXAMPLE, response_only=True)],
        tags=["catalog"],
    )
    def get(self, request, concert_id: int):
        def build():
            return ConcertSerializer(selectors.concert_get(concert_id=concert_id)).data

        key = catalog_key("concert", concert_id)
        return Response(catalog_cached(key, settings.CATALOG_CACHE_SECONDS, build))


class SeatMapView(generics.GenericAPIView):
    serializer_class = SeatMapScheduleSerializer

    @extend_schema(
        operation_id="schedules_seats",
        summary="Seat map of a performance",
        description="Every seat with its status now: `available`, `held` or `sold`. A hold "
        "that has run out shows as `available` at once. Needs an admitted X-Queue-Token of "
        "the concert's queue.",
        parameters=[QUEUE_TOKEN_PARAMETER],
        responses={
            200: SeatMapSerializer,
            **error_responses(
                "not_authenticated",
                "queue_token_invalid",
                "queue_not_admitted",
                "not_found",
                "queue_token_expired",
                "service_unavailable",
            ),
        },
        examples=[
            OpenApiExample(
                "seat map",
                value={
                    "schedule": {
                        "id": 7,
                        "concert_id": 1,
                        "concert_title": "Blue Hour World Tour",
                        "starts_at": "2026-12-20T19:00:00+09:00",
                        "ends_at": "2026-12-20T21:30:00+09:00",
                        "booking_fee": 2000,
                        "ticket_limit": 4,
                    },
                    "available_seats": 1,
                    "total_seats": 2,
                    "seats": [
                        {
                            "id": 101,
                            "section": "A",
                            "row": 1,
                            "number": 1,
                            "grade": "VIP",
                            "price": 165000,
                            "status": "available",
                        },
                        {
                            "id": 102,
                            "section": "A",
                            "row": 1,
                            "number": 2,
                            "grade": "VIP",
                            "price": 165000,
                            "status": "sold",
                        },
                    ],
                },
                response_only=True,
            )
        ],
        tags=["catalog"],
    )
    def get(self, request, schedule_id: int):
        schedule = selectors.schedule_get_cached(schedule_id=schedule_id)
        queue_require_admitted(
            raw_token=queue_token_of(request), user_id=request.user.id, concert=schedule.concert
        )
        body = seat_map_json(
            schedule_id,
            schedule_part=SEAT_MAP_SCHEDULE.to_representation(schedule),
            # A lapsed hold's seat that the waitlist waits for stays held until handed on.
            held_back=lambda: waitlist_waited_grades(schedule_id=schedule_id),
        )
        return HttpResponse(body, content_type="application/json")


# Built once per process: a serializer builds its fields anew for every instance, and
# to_representation() of a built one keeps no state between calls.
SEAT_MAP_SCHEDULE = SeatMapScheduleSerializer()
