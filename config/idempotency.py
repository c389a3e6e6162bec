"""Idempotency-Key for write views: `@idempotent` on an APIView method.

A client that sends `Idempotency-Key: <uuid>` with a write gets the first answer back on every
retry, and the work is done once. How:

1. The key is claimed in a short transaction of its own: a row (customer, key) under a unique
   constraint. A second request with the key finds the row: a different request -> 422; the
   first still running -> 409 with Retry-After; the first finished -> its answer replayed.
2. The view's work (its service, with the service's own transaction nested as a savepoint)
   and the row's "completed, here is the answer" commit in one transaction, so the record
   can never claim an answer whose writes were rolled back, nor the reverse.
3. If the work fails with an error, the claim is dropped: the customer can fix the cause
   (charge the wallet, say) and retry with the same key.

A claim older than STALE_AFTER is taken over: its request died, or is still stuck. To make
the takeover safe against the second case, the work transaction records its answer only if
the claim is still as it was claimed (same locked_at), and rolls everything back otherwise:
a stuck request whose claim was taken over leaves nothing behind. If the first request
records first, the takeover's UPDATE waits for that row and then finds the claim completed
(409). Checking at the end rather than locking the claim first saves a query on every
request; a stuck request's work only runs to be undone, and meanwhile holds the rows the
takeover's work waits for.

The view method must answer a DRF Response whose data is JSON (it is stored and replayed).
"""

import functools
import hashlib
import json
import uuid
from collections.abc import Callable
from contextlib import nullcontext
from datetime import timedelta

from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import IdempotencyRecord

from .db import retry_on_lock_conflict
from .errors import IdempotencyInProgress, IdempotencyKeyReused, ValidationFailed

HEADER = "Idempotency-Key"
KEEP_FOR = timedelta(hours=24)
STALE_AFTER = timedelta(seconds=30)

IDEMPOTENCY_PARAMETER = OpenApiParameter(
    HEADER,
    OpenApiTypes.UUID,
    OpenApiParameter.HEADER,
    required=False,
    description="A fresh UUID per operation. Retrying with the same key returns the first "
    "answer instead of doing the work again (kept 24 hours).",
)


def idempotent(view_method: Callable[..., Response]) -> Callable[..., Response]:
    """Answer the decorated APIView method once per Idempotency-Key and customer; without
    the header, just answer it."""

    @functools.wraps(view_method)
    def answer_once(view, request: Request, *args, **kwargs) -> Response:
        def work() -> Response:
            return view_method(view, request, *args, **kwargs)

        key = _key(request)
        if key is None:
            return work()
        claimed = _claim(user_id=request.user.id, key=key, fingerprint=_fingerprint(request))
        if isinstance(claimed, Response):
            return claimed
        try:
            return _work_and_record(claimed, work)
        except Exception:
            _drop_claim(claimed)
            raise

    return answer_once


def _fingerprint(request: Request) -> str:
    body = json.dumps(request.data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{request.method} {request.path}\n{body}".encode()).hexdigest()


def _key(request: Request) -> str | None:
    raw = request.headers.get(HEADER)
    if raw is None:
        return None
    try:
        return str(uuid.UUID(raw.strip()))
    except ValueError:
        raise ValidationFailed.on(
            HEADER, "Must be a UUID, e.g. a fresh uuid4 per operation."
        ) from None


@retry_on_lock_conflict()
def _claim(*, user_id: int, key: str, fingerprint: str) -> IdempotencyRecord | Response:
    for _ in range(3):  # a claim dropped by a failed request in between: claim afresh
        claimed = _claim_once(user_id=user_id, key=key, fingerprint=fingerprint)
        if claimed is not None:
            return claimed
    raise IdempotencyInProgress()


def _claim_once(*, user_id: int, key: str, fingerprint: str) -> IdempotencyRecord | Response | None:
    now = timezone.now()
    # Outside any transaction (every request) the INSERT commits by itself, in one round trip;
    # inside a caller's (a test's), a savepoint keeps a duplicate key from spoiling it.
    claim = transaction.atomic() if connection.in_atomic_block else nullcontext()
    try:
        with claim:
            return IdempotencyRecord.objects.create(
                user_id=user_id, key=key, fingerprint=fingerprint, locked_at=now
            )
    except IntegrityError:
        pass
    record = IdempotencyRecord.objects.filter(user_id=user_id, key=key).first()
    if record is None:
        return None
    if record.created_at < now - KEEP_FOR:  # outlived its 24 hours; the sweep is behind
        IdempotencyRecord.objects.filter(id=record.id, created_at=record.created_at).delete()
        return None
    if record.fingerprint != fingerprint:
        raise IdempotencyKeyReused()
    if record.completed:
        return Response(
            record.response_body,
            status=record.response_status,
            headers={"Idempotent-Replayed": "true"},
        )
    if record.locked_at > now - STALE_AFTER:
        raise IdempotencyInProgress()
    # Waits while the first request's work transaction holds the claim row (see above).
    taken_over = IdempotencyRecord.objects.filter(
        id=record.id, completed=False, locked_at=record.locked_at
    ).update(locked_at=now)
    if not taken_over:
        raise IdempotencyInProgress()
    record.locked_at = now
    return record


@retry_on_lock_conflict()
def _drop_claim(record: IdempotencyRecord) -> None:
    # Only our own claim: a takeover's claim (newer locked_at) is not ours to drop.
    IdempotencyRecord.objects.filter(
        id=record.id, completed=False, locked_at=record.locked_at
    ).delete()


@retry_on_lock_conflict()
def _work_and_record(record: IdempotencyRecord, work: Callable[[], Response]) -> Response:
    with transaction.atomic():
        response = work()
        # Only while the claim is still ours, as claimed (same locked_at): if it was taken
        # over meanwhile, nothing of this transaction commits, and the other request answers.
        recorded = IdempotencyRecord.objects.filter(
            id=record.id, completed=False, locked_at=record.locked_at
        ).update(
            completed=True,
            response_status=response.status_code,
            response_body=json.loads(json.dumps(response.data, default=str)),
        )
        if not recorded:
            raise IdempotencyInProgress()
    return response


def idempotency_records_delete_old() -> int:
    """Keys are kept 24 hours; the beat task calls this to drop older ones."""
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=timezone.now() - KEEP_FOR).delete()
    return deleted
