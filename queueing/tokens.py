"""Queue tokens: `<concert id>.<entry nonce>.<MAC>`.

The MAC binds the token to its concert, its customer and its entry, so a forged token, another
customer's token or another concert's token is refused without asking Redis; Redis then says
whether the named entry is still the customer's current one and what state it is in.
"""

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from django.conf import settings

TOKEN_FORMAT = re.compile(
    r"(?P<concert>[0-9]{1,18})\.(?P<nonce>[0-9a-f]{16})\.(?P<mac>[0-9a-f]{32})"
)


@dataclass(frozen=True)
class QueueToken:
    concert_id: int
    nonce: str


def _mac(concert_id: int, user_id: int, nonce: str) -> str:
    key = hashlib.sha256(f"queue-token:{settings.SECRET_KEY}".encode()).digest()
    message = f"{concert_id}:{user_id}:{nonce}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:32]


def new_nonce() -> str:
    return secrets.token_hex(8)


def token_issue(*, concert_id: int, user_id: int, nonce: str) -> str:
    return f"{concert_id}.{nonce}.{_mac(concert_id, user_id, nonce)}"


def token_read(raw: str | None, *, user_id: int) -> QueueToken | None:
    """The token's concert and entry if it is well-formed and was issued to `user_id`."""
    # ASCII only: str.isdigit() accepts "²", which int() then refuses.
    match = TOKEN_FORMAT.fullmatch(raw.strip()) if raw and len(raw) <= 100 else None
    if match is None:
        return None
    concert_id, nonce, mac = int(match["concert"]), match["nonce"], match["mac"]
    if not hmac.compare_digest(mac, _mac(concert_id, user_id, nonce)):
        return None
    return QueueToken(concert_id=concert_id, nonce=nonce)
