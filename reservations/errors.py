from rest_framework import status

from config.errors import DomainError


class SeatsUnavailable(DomainError):
    status_code = status.HTTP_409_CONFLICT
    code = "seats_unavailable"
    message = "Some of these seats are already taken."


class HoldLimitReached(DomainError):
    status_code = status.HTTP_409_CONFLICT
    code = "hold_limit_reached"
    message = "You may hold at most 4 seats of a performance at once."


class ReservationNotPayable(DomainError):
    status_code = status.HTTP_409_CONFLICT
    code = "reservation_not_payable"
    message = "This reservation cannot be paid."


class ReservationNotCancellable(DomainError):
    status_code = status.HTTP_409_CONFLICT
    code = "reservation_not_cancellable"
    message = "Only a held reservation can be cancelled."


class SalesClosed(DomainError):
    status_code = status.HTTP_409_CONFLICT
    code = "sales_closed"
    message = "This performance has started; its seats are no longer on sale."


class InvalidSeats(DomainError):
    status_code = status.HTTP_400_BAD_REQUEST
    code = "validation_error"
    message = "The request has invalid fields; see details."


class HoldExpired(DomainError):
    status_code = status.HTTP_410_GONE
    code = "hold_expired"
    message = "The hold ran out and its seats went to someone else. Hold seats again."
