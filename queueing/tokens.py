"""Queue tokens: `<concert id>.<entry nonce>.<order key>.<MAC>`.

The MAC binds the token to its concert, its customer, its entry and its place in line, so a
forged token, another customer's token or another concert's token is refused without asking
Redis; Redis then says whether the named entry is still the customer's current one and what
state it is in. The signed order key is what survives Redis losing the line: a customer whose
entry Redis no longer knows is put back at the same key, so everyone keeps their order
(docs/queue.md, "When Redis loses the line").
"""

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from django.conf import settings

from .errors import QueueTokenInvalid, TokenProblem

TOKEN_FORMAT = re.compile(
    r"(?P<concert>[0-9]{1,18})\.(?P<nonce>[0-9a-f]{16})\.(?P<order>[0-9]{1,17})"
    r"\.(?P<mac>[0-9a-f]{32})"
)


@dataclass(frozen=True)
class QueueToken:
    concert_id: int
    nonce: str
    order: int  # the entry's order key in the line; 0 when issued to an admitted entry


def _mac(concert_id: int, user_id: int, nonce: str, order: int) -> str:
    key = hashlib.sha256(f"queue-token:{settings.SECRET_KEY}".encode()).digest()
    message = f"{concert_id}:{user_id}:{nonce}:{order}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:32]


def new_nonce() -> str:
    return secrets.token_hex(8)


def token_issue(*, concert_id: int, user_id: int, nonce: str, order: int) -> str:
    return f"{concert_id}.{nonce}.{order}.{_mac(concert_id, user_id, nonce, order)}"


def token_entry_unverified(raw: str | None) -> tuple[int, str] | None:
    """(concert id, nonce) of a well-formed token, its MAC not checked (that needs the
    customer): for the poll gate, which runs before authentication and only reads."""
    if not raw or len(raw) > 120:
        return None
    match = TOKEN_FORMAT.fullmatch(raw.strip())
    return None if match is None else (int(match["concert"]), match["nonce"])


def token_verify(raw: str | None, *, user_id: int) -> QueueToken:
    """The token, if well-formed and issued to `user_id`; else QueueTokenInvalid saying why."""
    if not raw or not raw.strip():
        raise QueueTokenInvalid.because(TokenProblem.MISSING)
    # ASCII only: str.isdigit() accepts "²", which int() then refuses.
    match = TOKEN_FORMAT.fullmatch(raw.strip()) if len(raw) <= 120 else None
    if match is None:
        raise QueueTokenInvalid.because(TokenProblem.MALFORMED)
    concert_id, nonce, order = int(match["concert"]), match["nonce"], int(match["order"])
    if not hmac.compare_digest(match["mac"], _mac(concert_id, user_id, nonce, order)):
        raise QueueTokenInvalid.because(TokenProblem.NOT_YOURS)
    return QueueToken(concert_id=concert_id, nonce=nonce, order=order)
