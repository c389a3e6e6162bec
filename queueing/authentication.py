"""Authentication of a queue poll by its X-Queue-Token alone.

Every waiting customer polls `GET /api/v1/queue`, and the Bearer token's lookup was the poll's
one database query. A queue token names its customer and is signed for them (tokens.py), so it
proves who is polling as well as the Bearer token does, for this one call: it shows that
customer's place in that concert's line and nothing else. Everything else (entering, leaving,
the seat map, holds, money) still takes the Bearer token (docs/queue.md, "Polling").
"""

from dataclasses import dataclass

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication

from accounts.authentication import BearerTokenAuthentication

from .gate import QUEUE_TOKEN_HEADER, queue_token_of
from .tokens import token_authenticate


@dataclass(frozen=True)
class QueueTokenHolder:
    """The customer a queue token was issued to, as request.user: their id only (no row)."""

    id: int
    is_authenticated = True
    is_anonymous = False
    is_active = True

    @property
    def pk(self) -> int:
        return self.id


class QueueTokenAuthentication(BaseAuthentication):
    """A GET whose X-Queue-Token names its customer with a valid signature is that customer's;
    request.auth is the QueueToken. Anything else is left to the next authenticator (Bearer),
    and the view then says what is wrong with the token."""

    def authenticate(self, request):
        if request.method != "GET":
            return None
        token = token_authenticate(queue_token_of(request))
        return None if token is None else (QueueTokenHolder(token.user_id), token)

    def authenticate_header(self, request):
        # A 401 must still say Bearer: it is the customer's login that is missing.
        return BearerTokenAuthentication().authenticate_header(request)


class QueueTokenScheme(OpenApiAuthenticationExtension):
    target_class = QueueTokenAuthentication
    name = "queueToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": QUEUE_TOKEN_HEADER,
            "description": "GET /api/v1/queue only: a queue token names its customer, so the "
            "poll needs no Bearer token.",
        }
