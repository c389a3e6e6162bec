import redis.exceptions
from django.conf import settings
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import BearerTokenAuthentication
from concerts.selectors import concert_get_cached
from config.openapi import error_responses

from . import services
from .authentication import QueueTokenAuthentication
from .errors import QueueTokenInvalid
from .gate import QUEUE_TOKEN_PARAMETER, queue_token_of, queue_token_require
from .models import QueueState
from .selectors import QueueStatus, queue_poll_gate
from .tokens import QueueToken, token_entry_unverified


class QueueStatusSerializer(serializers.Serializer):
    concert_id = serializers.IntegerField()
    status = serializers.ChoiceField(
        choices=QueueState.choices,
        help_text="waiting -> admitted -> done (paid or left) | expired; `paused` is waiting "
        "while the operator holds admission (your place is kept).",
    )
    position = serializers.IntegerField(
        allow_null=True, help_text="1 = next in line. Null before sales open and once admitted."
    )
    ahead = serializers.IntegerField(allow_null=True, help_text="Customers ahead of you.")
    eta_seconds = serializers.IntegerField(
        allow_null=True,
        help_text="Estimated wait: the configured pace while slots are free, then the pace at "
        "which shopping customers' sessions end (estimated from the sessions seen so far, "
        "pessimistic until they end). Null before opening and while paused.",
    )
    admitted_until = serializers.DateTimeField(
        allow_null=True, help_text="When admitted: until when you may view seats and hold."
    )
    sale_opens_at = serializers.DateTimeField(allow_null=True)
    ended_reason = serializers.ChoiceField(
        choices=["left", "done", "abandoned", "unclaimed", "expired"],
        allow_null=True,
        help_text="Once done or expired, why: left, done (paid), abandoned (stopped polling "
        "while waiting), unclaimed (admitted, but did not poll or view seats within the claim "
        "window: the slot went to the next in line), expired (the admitted session ran "
        "out). Enter again to get a new place at the back of the line.",
    )
    poll_after_seconds = serializers.IntegerField(
        help_text="When to ask again, set by the server from your place: about a quarter of "
        "your ETA, from 1 s near the front to at most 60 s (less when the concert's abandon "
        "time is short; before opening: after opening, by a quarter of the ETA your place will "
        "have then). Polling as told keeps your place "
        "and never loses an admission: once admitted, the slot waits for your next poll plus "
        "the claim window (30 s by default). A poll before 80 % of the told interval (or the "
        "interval less 1 s, whichever is earlier) is refused with 429 queue_poll_too_early "
        "and Retry-After.",
    )


class QueueEntrySerializer(QueueStatusSerializer):
    token = serializers.CharField(help_text="Send as the X-Queue-Token header.")


_DATETIME = serializers.DateTimeField()


def _datetime(value):
    return None if value is None else _DATETIME.to_representation(value)


def status_payload(concert_id: int, status: QueueStatus) -> dict:
    """The body of QueueStatusSerializer, built directly: every waiting customer polls it
    every few seconds, and the serializer machinery cost more than the Redis call."""
    waiting = status.state in (QueueState.WAITING, QueueState.PAUSED)
    return {
        "concert_id": concert_id,
        "status": status.state,
        "position": status.position,
        "ahead": status.ahead,
        "eta_seconds": status.eta_seconds,
        "admitted_until": _datetime(status.admitted_until),
        "sale_opens_at": _datetime(status.sale_opens_at),
        "ended_reason": None if waiting else status.ended_because,
        "poll_after_seconds": status.poll_after_seconds,
    }


_WAITING_EXAMPLE = {
    "concert_id": 1,
    "status": "waiting",
    "position": 1532,
    "ahead": 1531,
    "eta_seconds": 307,
    "admitted_until": None,
    "sale_opens_at": "2026-12-01T20:00:00+09:00",
    "ended_reason": None,
    "poll_after_seconds": 60,
}
_ADMITTED_EXAMPLE = {
    **_WAITING_EXAMPLE,
    "status": "admitted",
    "position": None,
    "ahead": None,
    "eta_seconds": None,
    "admitted_until": "2026-12-01T20:14:02+09:00",
    "poll_after_seconds": 30,
}
_TOKEN = "1.9f86d081884c7d65.6b86b273ff34fce19d6b804eff5a3f57"


class EnterQueueView(APIView):
    @extend_schema(
        operation_id="queue_enter",
        summary="Enter a concert's queue",
        description="Idempotent: while your entry is live you get the same entry and token "
        "back (200); a new entry is 201. Send your X-Queue-Token if you have one: should the "
        "queue have lost your entry (a server restart), you get your place back. Arrivals before sales open are put in a random order "
        "at opening, ahead of later arrivals; after opening the line is first come, first "
        "served. Poll `GET /api/v1/queue` to keep your place.",
        request=None,
        responses={
            201: QueueEntrySerializer,
            200: QueueEntrySerializer,
            **error_responses(
                "not_authenticated", "not_found", "queue_closed", "service_unavailable"
            ),
        },
        examples=[
            OpenApiExample(
                "entered", value={**_WAITING_EXAMPLE, "token": _TOKEN}, response_only=True
            )
        ],
        tags=["queue"],
    )
    def post(self, request, concert_id: int):
        entry = services.queue_enter(
            concert_id=concert_id, user_id=request.user.id, previous=_previous_token(request)
        )
        return Response(
            {"token": entry.token, **status_payload(concert_id, entry.status)},
            status=status.HTTP_201_CREATED if entry.created else status.HTTP_200_OK,
        )


def _previous_token(request) -> QueueToken | None:
    """The customer's token of this queue, when the enter call sent one: an entry Redis lost
    is put back from it. A token that is not theirs is ignored here, not refused."""
    try:
        return queue_token_require(queue_token_of(request), user_id=request.user.id)
    except QueueTokenInvalid:
        return None


class QueueView(APIView):
    # A poll is authenticated by its queue token when the token names its customer: one
    # Redis call and no database query (queueing/authentication.py, docs/queue.md "Polling").
    authentication_classes = [QueueTokenAuthentication, BearerTokenAuthentication]

    def perform_authentication(self, request):
        """A poll well before its time is refused before the customer is authenticated, so
        a client polling too fast costs next to nothing: for a token that names its customer
        the poll's own Redis call does it (STATUS), for one of the earlier format (the
        Bearer token's database lookup would come first) one Redis read here."""
        if request.method == "GET" and settings.QUEUE_POLL_GATE:
            entry = token_entry_unverified(queue_token_of(request))
            if entry is not None and entry.user_id is None:
                try:
                    queue_poll_gate(concert_id=entry.concert_id, nonce=entry.nonce)
                except redis.exceptions.RedisError:
                    pass  # the poll itself says so (503), once the token has been checked
        super().perform_authentication(request)

    def _token(self, request) -> QueueToken:
        if isinstance(request.auth, QueueToken):  # checked by QueueTokenAuthentication
            return request.auth
        return queue_token_require(queue_token_of(request), user_id=request.user.id)

    @extend_schema(
        operation_id="queue_status",
        summary="My place in the queue",
        description="Position, ahead, ETA and status of the entry named by X-Queue-Token. "
        "The queue token authenticates this call by itself (it names the customer it was "
        "issued to, and is signed for them): the Bearer token may be sent and is not looked "
        "up. A token of the earlier format (four parts, without the customer) still needs "
        "the Bearer token. "
        "Poll again after `poll_after_seconds` (longer far back in line, every second or two "
        "near the front): polling keeps a waiting entry alive (one that is not polled for the "
        "concert's abandon time loses its place) and claims an admission (one not claimed "
        "within the claim window goes to the next in line: `expired` with `ended_reason` "
        "`unclaimed`). Polling much earlier than told is refused with 429 "
        "`queue_poll_too_early` and `Retry-After`, checked before authentication.",
        parameters=[QUEUE_TOKEN_PARAMETER],
        responses={
            200: QueueStatusSerializer,
            **error_responses(
                "not_authenticated",
                "queue_token_invalid",
                "queue_poll_too_early",
                "service_unavailable",
            ),
        },
        examples=[
            OpenApiExample("waiting", value=_WAITING_EXAMPLE, response_only=True),
            OpenApiExample("admitted", value=_ADMITTED_EXAMPLE, response_only=True),
        ],
        tags=["queue"],
    )
    def get(self, request):
        token = self._token(request)
        concert = concert_get_cached(concert_id=token.concert_id)
        status_now = services.queue_poll(concert=concert, user_id=request.user.id, token=token)
        return Response(status_payload(concert.id, status_now))

    @extend_schema(
        operation_id="queue_leave",
        summary="Leave the queue",
        description="Gives up the entry named by X-Queue-Token. An admitted customer's slot "
        "goes to the next in line at once. Leaving twice is harmless.",
        parameters=[QUEUE_TOKEN_PARAMETER],
        auth=[{"tokenAuth": []}],  # the queue token alone authenticates only the poll
        responses={
            204: None,
            **error_responses("not_authenticated", "queue_token_invalid", "service_unavailable"),
        },
        tags=["queue"],
    )
    def delete(self, request):
        services.queue_leave(token=self._token(request), user_id=request.user.id)
        return Response(status=status.HTTP_204_NO_CONTENT)
