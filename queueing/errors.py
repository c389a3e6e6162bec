from rest_framework import status

from config.errors import DomainError


class QueueTokenInvalid(DomainError):
    status_code = status.HTTP_401_UNAUTHORIZED
    code = "queue_token_invalid"
    message = "The X-Queue-Token header is missing, malformed, or not yours for this concert."


class QueueNotAdmitted(DomainError):
    status_code = status.HTTP_403_FORBIDDEN
    code = "queue_not_admitted"
    message = "You are still waiting in the queue."
    example_details = {"position": 1532, "eta_seconds": 307}


class QueueTokenExpired(DomainError):
    status_code = status.HTTP_410_GONE
    code = "queue_token_expired"
    message = "This queue entry has ended. Enter the queue again."
    example_details = {"state": "expired"}


class QueueClosed(DomainError):
    status_code = status.HTTP_409_CONFLICT
    code = "queue_closed"
    message = "Ticket sales for this concert have not been announced yet."
