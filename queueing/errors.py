from django.db import models
from django.utils.translation import gettext_lazy as _
from rest_framework import status

from config.errors import DomainError


class TokenProblem(models.TextChoices):
    """What is wrong with an X-Queue-Token (`details.reason` of queue_token_invalid)."""

    MISSING = "missing", _("Send the X-Queue-Token header: the token you got entering the queue.")
    MALFORMED = "malformed", _("The X-Queue-Token header does not hold a queue token.")
    NOT_YOURS = "not_yours", _("This queue token was not issued to you.")
    OTHER_CONCERT = "other_concert", _("This queue token is for another concert's queue.")
    REPLACED = (
        "replaced",
        _("This queue token names an entry you replaced by entering again; use the newest token."),
    )


class QueueTokenInvalid(DomainError):
    # 403, never 401: a frontend logs the customer out on 401, and the Bearer token is fine.
    status_code = status.HTTP_403_FORBIDDEN
    code = "queue_token_invalid"
    message = _("The X-Queue-Token header is missing, malformed, or not yours for this concert.")
    example_details = {"reason": TokenProblem.NOT_YOURS.value}

    @classmethod
    def because(cls, problem: TokenProblem) -> "QueueTokenInvalid":
        return cls(problem.label, details={"reason": problem.value})


class QueueNotAdmitted(DomainError):
    status_code = status.HTTP_403_FORBIDDEN
    code = "queue_not_admitted"
    message = _("You are still waiting in the queue.")
    example_details = {"position": 1532, "eta_seconds": 307}


class QueueTokenExpired(DomainError):
    status_code = status.HTTP_410_GONE
    code = "queue_token_expired"
    message = _("This queue entry has ended. Enter the queue again.")
    example_details = {"state": "expired", "reason": "unclaimed"}


class QueueClosed(DomainError):
    status_code = status.HTTP_409_CONFLICT
    code = "queue_closed"
    message = _("Ticket sales for this concert have not been announced yet.")


class QueuePollTooEarly(DomainError):
    """A waiting customer polled well before the poll_after_seconds they were told: refused
    from one Redis read, before authentication (docs/queue.md, "Polling")."""

    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    code = "queue_poll_too_early"
    message = _("You polled the queue too early. Ask again after the time you were told.")
    example_details = {"retry_after_seconds": 12}

    @classmethod
    def wait(cls, milliseconds: int) -> "QueuePollTooEarly":
        seconds = max(1, -(-int(milliseconds) // 1000))
        error = cls(details={"retry_after_seconds": seconds})
        error.retry_after = seconds
        return error
