"""The customers' side of the wire: one HTTP client per simulated customer thread, and the
recorder that keeps every answer, every acknowledged write and every place a customer lost.

Times are seconds since the run began (time.monotonic), so faults, answers and samples line
up on one clock.
"""

from __future__ import annotations

import functools
import http.client
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit

# Longer than nginx's proxy_read_timeout (30 s): a request the application never finishes is
# answered 504 by the proxy before the customer gives up on it.
CLIENT_TIMEOUT = 40
# nginx closes an idle keep-alive connection after 15 s (keepalive_timeout): reuse one only
# well before that, so a request never meets a connection the proxy has just closed.
REUSE_IDLE_SECONDS = 10
# What a client waits before a retry when the answer named no Retry-After (a dropped
# connection), and the most it honours (the application asks 5 s during an outage).
DEFAULT_RETRY_SECONDS = 1.0
MAX_RETRY_SECONDS = 5.0


@dataclass(frozen=True)
class Answer:
    kind: str  # the customer's step: enter, poll, seat map, hold, pay, charge, cancel, leave...
    status: int  # 0: no answer at all (connection refused or dropped, client timeout)
    code: str | None  # error.code of an error answer
    body: object
    retry_after: float | None
    from_proxy: bool  # answered by nginx itself: no gunicorn worker answered
    started: float
    seconds: float
    user_id: int
    subject: int | None = None  # the reservation a pay/cancel/hold answer is about

    @property
    def ended(self) -> float:
        return self.started + self.seconds

    @property
    def unavailable(self) -> bool:
        """The service said it cannot answer now (or said nothing): retry later. A 409
        idempotency_in_progress is the same for a write: the first attempt still runs."""
        return self.status in (0, 502, 503, 504) or self.code == "idempotency_in_progress"

    @property
    def server_error(self) -> bool:
        """A 5xx that is not 'unavailable, retry' (503): a bug or a timeout."""
        return self.status >= 500 and self.status != 503

    def wait_before_retry(self) -> float:
        return min(self.retry_after or DEFAULT_RETRY_SECONDS, MAX_RETRY_SECONDS)


@dataclass
class WriteChain:
    """One write (a payment, a charge) and every attempt at it under one Idempotency-Key,
    until a definite answer or the customer gave up."""

    kind: str
    user_id: int
    key: str
    subject: int | None
    attempts: list[Answer] = field(default_factory=list)
    outcome: str | None = None  # "201", "410 hold_expired", "gave up"...

    @property
    def interrupted(self) -> list[Answer]:
        return [a for a in self.attempts if a.unavailable]

    def definite(self) -> Answer | None:
        last = self.attempts[-1] if self.attempts else None
        return last if last is not None and not last.unavailable else None


class Recorder:
    """Everything the customers saw. Appends only (list.append is atomic under the GIL);
    the in-flight counts take a lock."""

    def __init__(self):
        self.t0 = time.monotonic()
        self.t0_wall = time.time()
        self.answers: list[Answer] = []
        self.acks: list[dict] = []  # acknowledged writes: what the database must now hold
        self.chains: list[WriteChain] = []
        self.lost_places: list[dict] = []  # a customer's place or session the queue lost
        # Entries the queue gave back though their customer had ended them (paid, left): a
        # session that comes back lets its customer in ahead of everyone waiting.
        self.revived_entries: list[dict] = []
        # (time, nonce) of every new entry (201) each customer made, by user: an entry that
        # replaced a waiting one is legitimate only if its customer made it.
        self.entries_made: dict[int, list[tuple[float, str]]] = {}
        self.undone_admissions: list[dict] = []  # admitted, then told to wait again
        self.cancel_requested: set[int] = set()  # reservations someone asked to cancel
        self._in_flight: Counter = Counter()
        self._lock = threading.Lock()

    def now(self) -> float:
        return time.monotonic() - self.t0

    def wall(self, at: float) -> datetime:
        """A time of the run's clock as the moment it was (to compare with the database's)."""
        return datetime.fromtimestamp(self.t0_wall + at, UTC)

    def sending(self, kind: str) -> None:
        with self._lock:
            self._in_flight[kind] += 1

    def answered(self, answer: Answer) -> None:
        with self._lock:
            self._in_flight[answer.kind] -= 1
        self.answers.append(answer)

    def in_flight(self, *kinds: str) -> int:
        with self._lock:
            return sum(self._in_flight[kind] for kind in kinds)

    def acknowledged(self, kind: str, answer: Answer, **facts) -> None:
        self.acks.append({"kind": kind, "at": answer.ended, "user_id": answer.user_id, **facts})

    def chain(self, kind: str, user_id: int, key: str, subject: int | None = None) -> WriteChain:
        chain = WriteChain(kind=kind, user_id=user_id, key=key, subject=subject)
        self.chains.append(chain)
        return chain

    def place_lost(self, *, user_id: int, concert_id: int, how: str, **evidence) -> None:
        self.lost_places.append(
            {"at": round(self.now(), 2), "user_id": user_id, "concert_id": concert_id, "how": how}
            | evidence
        )

    def entry_made(self, *, user_id: int, token: str) -> None:
        self.entries_made.setdefault(user_id, []).append((self.now(), token_nonce(token)))

    def nonces_made_since(self, user_id: int, since: float) -> set[str]:
        return {nonce for at, nonce in self.entries_made.get(user_id, ()) if at >= since}

    def entry_revived(self, *, user_id: int, concert_id: int, **evidence) -> None:
        self.revived_entries.append(
            {"at": round(self.now(), 2), "user_id": user_id, "concert_id": concert_id} | evidence
        )

    def admission_undone(self, *, user_id: int, concert_id: int, **evidence) -> None:
        self.undone_admissions.append(
            {"at": round(self.now(), 2), "user_id": user_id, "concert_id": concert_id} | evidence
        )


def token_nonce(token: str) -> str:
    """The entry nonce a queue token names (`<concert>.<nonce>.<order>.<mac>`)."""
    return token.split(".")[1] if token.count(".") == 3 else ""


class Api:
    """One customer's browser: a keep-alive connection to the proxy, every answer recorded."""

    def __init__(self, url: str, recorder: Recorder):
        parts = urlsplit(url)
        self.host, self.port = parts.hostname, parts.port
        self.recorder = recorder
        self._connection: http.client.HTTPConnection | None = None
        self._last_used = 0.0

    def call(
        self,
        kind: str,
        method: str,
        path: str,
        *,
        bearer: str,
        user_id: int,
        body: dict | None = None,
        queue_token: str | None = None,
        idempotency_key: str | None = None,
        subject: int | None = None,
    ) -> Answer:
        headers = {"Authorization": f"Bearer {bearer}", "Accept": "application/json"}
        if queue_token:
            headers["X-Queue-Token"] = queue_token
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        self.recorder.sending(kind)
        started = self.recorder.now()
        status, response_headers, raw = self._exchange(method, path, payload, headers)
        answer = _answer(kind, status, response_headers, raw)(
            started=started,
            seconds=self.recorder.now() - started,
            user_id=user_id,
            subject=subject,
        )
        self.recorder.answered(answer)
        return answer

    def _exchange(self, method, path, payload, headers):
        if self._connection is None or time.monotonic() - self._last_used > REUSE_IDLE_SECONDS:
            self.close()
            self._connection = http.client.HTTPConnection(
                self.host, self.port, timeout=CLIENT_TIMEOUT
            )
        try:
            self._connection.request(method, path, body=payload, headers=headers)
            response = self._connection.getresponse()
            raw = response.read()
            self._last_used = time.monotonic()
            if response.getheader("Connection", "").lower() == "close":
                self.close()
            return response.status, response.headers, raw
        except (OSError, http.client.HTTPException):  # (TimeoutError is an OSError)
            self.close()
            return 0, None, b""

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def _answer(kind: str, status: int, headers, raw: bytes):
    """What an HTTP answer says (status, error code, body, Retry-After, who answered), as an
    Answer waiting for its times and customer."""
    body: object = None
    if raw:
        try:
            body = json.loads(raw)
        except ValueError:
            body = raw[:200].decode(errors="replace")
    code = None
    if status >= 400 and isinstance(body, dict) and isinstance(body.get("error"), dict):
        code = body["error"].get("code")
    retry_after = None
    if headers is not None and headers.get("Retry-After"):
        try:
            retry_after = float(headers["Retry-After"])
        except ValueError:
            pass
    # Django's clickjacking middleware marks every answer of the application; the proxy's own
    # answers (its 503 when no worker answered, its 504) do not carry the header.
    from_proxy = headers is not None and headers.get("X-Frame-Options") is None
    return functools.partial(
        Answer,
        kind=kind,
        status=status,
        code=code,
        body=body,
        retry_after=retry_after,
        from_proxy=from_proxy,
    )
