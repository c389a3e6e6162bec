"""The queue gate: what a queue-gated call (seat map, hold) asks of the waiting room.

One module for the header's name, its OpenAPI parameter and the check, so every API that is
gated (concerts' seat map, reservations' holds) and the queue's own API use the same ones.
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter

from concerts.models import Concert

from .errors import QueueNotAdmitted, QueueTokenExpired
from .models import QueueState
from .services import queue_poll
from .tokens import QueueToken, token_verify

QUEUE_TOKEN_HEADER = "X-Queue-Token"

QUEUE_TOKEN_PARAMETER = OpenApiParameter(
    QUEUE_TOKEN_HEADER,
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=True,
    description="The token from entering the concert's queue.",
)


def queue_token_of(request) -> str | None:
    """The raw X-Queue-Token a request sent, if any."""
    return request.headers.get(QUEUE_TOKEN_HEADER)


def queue_token_require(raw_token: str | None, *, user_id: int) -> QueueToken:
    """The token, if well-formed and issued to this customer; refused before Redis is asked:
    its MAC binds it to the customer, the concert, the entry and its place."""
    return token_verify(raw_token, user_id=user_id)


def queue_require_admitted(*, raw_token: str | None, user_id: int, concert: Concert) -> None:
    """The customer holds an admitted token of this concert's queue. One Redis call, which
    also claims an admission not claimed yet (the customer is here)."""
    token = queue_token_require(raw_token, user_id=user_id)
    status = queue_poll(concert=concert, user_id=user_id, token=token, touch=False)
    if status.state == QueueState.ADMITTED:
        return
    if status.state in (QueueState.WAITING, QueueState.PAUSED):
        raise QueueNotAdmitted(
            details={"position": status.position, "eta_seconds": status.eta_seconds}
        )
    raise QueueTokenExpired(details={"state": status.state, "reason": status.ended_because})
