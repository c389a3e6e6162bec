"""Queue tokens: `<concert id>.<customer id>.<entry nonce>.<order key>.<MAC>`.

The MAC binds the token to its concert, its customer, its entry and its place in line, so a
forged token, another customer's token or another concert's token is refused without asking
Redis; Redis then says whether the named entry is still the customer's current one and what
state it is in. The signed order key is what survives Redis losing the line: a customer whose
entry Redis no longer knows is put back at the same key, so everyone keeps their order
(docs/queue.md, "When Redis loses the line").

The customer's id is in the token so that a poll can be authenticated by the token alone,
without the Bearer token's database lookup (queueing/authentication.py). Tokens issued before
it was (`<concert>.<nonce>.<order>.<MAC>`, the same MAC) are still accepted, with the Bearer
token saying whose they are.
"""

import functools
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from django.conf import settings

from .errors import QueueTokenInvalid, TokenProblem

TOKEN_FORMAT = re.compile(
    r"(?P<concert>[0-9]{1,18})\.(?:(?P<user>[0-9]{1,18})\.)?(?P<nonce>[0-9a-f]{16})"
    r"\.(?P<order>[0-9]{1,17})\.(?P<mac>[0-9a-f]{32})"
)
TOKEN_MAX_LENGTH = 120


@dataclass(frozen=True)
class QueueToken:
    concert_id: int
    nonce: str
    order: int  # the entry's order key in the line; 0 when issued to an admitted entry
    user_id: int | None = None  # None in a token of the earlier format (without it)


@functools.lru_cache(maxsize=4)
def _key(secret: str) -> bytes:
    return hashlib.sha256(f"queue-token:{secret}".encode()).digest()


def _mac(concert_id: int, user_id: int, nonce: str, order: int) -> str:
    message = f"{concert_id}:{user_id}:{nonce}:{order}".encode()
    return hmac.new(_key(settings.SECRET_KEY), message, hashlib.sha256).hexdigest()[:32]


def new_nonce() -> str:
    return secrets.token_hex(8)


def token_issue(*, concert_id: int, user_id: int, nonce: str, order: int) -> str:
    mac = _mac(concert_id, user_id, nonce, order)
    return f"{concert_id}.{user_id}.{nonce}.{order}.{mac}"


def _match(raw: str | None) -> re.Match | None:
    # ASCII only: str.isdigit() accepts "²", which int() then refuses.
    if not raw or len(raw) > TOKEN_MAX_LENGTH:
        return None
    return TOKEN_FORMAT.fullmatch(raw.strip())


def _token(match: re.Match) -> QueueToken:
    return QueueToken(
        concert_id=int(match["concert"]),
        nonce=match["nonce"],
        order=int(match["order"]),
        user_id=None if match["user"] is None else int(match["user"]),
    )


def _signed_by(match: re.Match, token: QueueToken, user_id: int) -> bool:
    mac = _mac(token.concert_id, user_id, token.nonce, token.order)
    return hmac.compare_digest(match["mac"], mac)


def token_entry_unverified(raw: str | None) -> QueueToken | None:
    """A well-formed token, its MAC not checked: for the poll gate, which runs before the
    customer is authenticated and only reads."""
    match = _match(raw)
    return None if match is None else _token(match)


def token_authenticate(raw: str | None) -> QueueToken | None:
    """The token, if it names its customer and its MAC is right for them: the proof that it
    was issued to that customer, with no database lookup. None otherwise (the caller falls
    back to the Bearer token, and token_verify then says what is wrong)."""
    match = _match(raw)
    if match is None or match["user"] is None:
        return None
    token = _token(match)
    return token if _signed_by(match, token, token.user_id) else None


def token_verify(raw: str | None, *, user_id: int) -> QueueToken:
    """The token, if well-formed and issued to `user_id`; else QueueTokenInvalid saying why."""
    if not raw or not raw.strip():
        raise QueueTokenInvalid.because(TokenProblem.MISSING)
    match = _match(raw)
    if match is None:
        raise QueueTokenInvalid.because(TokenProblem.MALFORMED)
    token = _token(match)
    if token.user_id not in (None, user_id) or not _signed_by(match, token, user_id):
        raise QueueTokenInvalid.because(TokenProblem.NOT_YOURS)
    return token
