from rest_framework import status

from config.errors import DomainError


class InvalidFields(DomainError):
    status_code = status.HTTP_400_BAD_REQUEST
    code = "validation_error"
    message = "The request has invalid fields; see details."


class InsufficientBalance(DomainError):
    status_code = status.HTTP_402_PAYMENT_REQUIRED
    code = "insufficient_balance"
    message = "The wallet balance is too low. Charge the wallet and pay again."


class IdempotencyKeyReused(DomainError):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    code = "idempotency_key_reused"
    message = "This Idempotency-Key was used for a different request."


class IdempotencyInProgress(DomainError):
    status_code = status.HTTP_409_CONFLICT
    code = "idempotency_in_progress"
    message = "A request with this Idempotency-Key is still being processed. Retry shortly."
    retry_after = 1


class RefundNotPossible(DomainError):
    status_code = status.HTTP_409_CONFLICT
    code = "refund_not_possible"
    message = "Only a completed payment can be refunded."
