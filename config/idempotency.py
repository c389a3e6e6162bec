"""Idempotency-Key for write views: `@idempotent` on an APIView method.

A client that sends `Idempotency-Key: <uuid>` with a write gets the first answer back on every
retry, and the work is done once. The key's record is written in the same transaction as the
work, first thing, under a unique (customer, key) index:

- the first request inserts the record, does the work (its service joins the transaction:
  config.db.service_atomic) and writes the answer on the record; all of it commits together, so a
  record never claims an answer whose writes were rolled back, nor the reverse;
- a retry while the first is still running inserts the same key and waits on the index
  entry the first holds. When the first commits, the retry's insert finds the key: the
  answer is replayed (a different request under the key: 422). When the first rolls back
  (an error, or its worker died and the database dropped its connection), the retry's
  insert goes through and the work is done afresh. Either way the retry learns the real
  outcome as soon as the database does; only a first request still running after the lock
  wait (innodb_lock_wait_timeout, 5 s) answers 409 `idempotency_in_progress`.
- a request that fails leaves no record, so the customer can fix the cause (charge the
  wallet, say) and retry with the same key.

The view method must answer a DRF Response whose data is JSON (it is stored and replayed).
"""

import functools
import hashlib
import json
import uuid
from collections.abc import Callable
from datetime import timedelta

from django.db import IntegrityError, OperationalError
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import IdempotencyRecord

from .db import retry_on_lock_conflict, transaction_joinable
from .errors import IdempotencyInProgress, IdempotencyKeyReused, ValidationFailed

HEADER = "Idempotency-Key"
KEEP_FOR = timedelta(hours=24)
LOCK_WAIT_TIMEOUT = 1205  # MySQL/MariaDB: the first request with the key is still running

IDEMPOTENCY_PARAMETER = OpenApiParameter(
    HEADER,
    OpenApiTypes.UUID,
    OpenApiParameter.HEADER,
    required=False,
    description="A fresh UUID per operation. Retrying with the same key returns the first "
    "answer instead of doing the work again (kept 24 hours); a retry sent while the first "
    "request still runs waits for its outcome.",
)


class _KeyTaken(Exception):
    """The key's record exists (committed by an earlier request): leave the transaction."""


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
        fingerprint = _fingerprint(request)
        for _attempt in range(2):  # a second go only after deleting a record past its 24 hours
            try:
                return _work_once(request.user.id, key, fingerprint, work)
            except _KeyTaken:
                replay = _replay(request.user.id, key, fingerprint)
                if replay is not None:
                    return replay
        raise IdempotencyInProgress()

    return answer_once


@retry_on_lock_conflict()
def _work_once(user_id: int, key: str, fingerprint: str, work: Callable[[], Response]) -> Response:
    with transaction_joinable():
        record = _record_insert(user_id, key, fingerprint)
        response = work()
        record.response_status = response.status_code
        record.response_body = json.loads(json.dumps(response.data, default=str))
        record.save(update_fields=["response_status", "response_body"])
    return response


def _record_insert(user_id: int, key: str, fingerprint: str) -> IdempotencyRecord:
    """The key's record, inserted first in the work transaction. Waits while another request
    with the key holds it (see above)."""
    # No savepoint: on either error below the whole work transaction is given up anyway.
    try:
        return IdempotencyRecord.objects.create(user_id=user_id, key=key, fingerprint=fingerprint)
    except IntegrityError:
        raise _KeyTaken() from None
    except OperationalError as error:
        if error.args and error.args[0] == LOCK_WAIT_TIMEOUT:
            raise IdempotencyInProgress() from None
        raise


def _replay(user_id: int, key: str, fingerprint: str) -> Response | None:
    """The first answer under the key; None when the record was past its 24 hours (deleted
    now: the key is free again)."""
    record = IdempotencyRecord.objects.filter(user_id=user_id, key=key).first()
    if record is None:
        return None  # deleted meanwhile by the housekeeping task
    if record.created_at < timezone.now() - KEEP_FOR:  # the housekeeping task is behind
        IdempotencyRecord.objects.filter(id=record.id).delete()
        return None
    if record.fingerprint != fingerprint:
        raise IdempotencyKeyReused()
    return Response(
        record.response_body, status=record.response_status, headers={"Idempotent-Replayed": "true"}
    )


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
            HEADER, _("Must be a UUID, e.g. a fresh uuid4 per operation.")
        ) from None


def idempotency_records_delete_old() -> int:
    """Keys are kept 24 hours; the beat task calls this to drop older ones."""
    deleted, _counts = IdempotencyRecord.objects.filter(
        created_at__lt=timezone.now() - KEEP_FOR
    ).delete()
    return deleted
