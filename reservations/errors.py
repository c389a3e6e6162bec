from rest_framework import status

from config.errors import DomainError

from .models import MAX_SEATS_PER_CUSTOMER_AND_SCHEDULE


class SeatsUnavailable(DomainError):
    status_code = status.HTTP_409_CONFLICT
    code = "seats_unavailable"
    message = "Some of these seats are already taken."
    example_details = {"seat_ids": [102]}


class HoldLimitReached(DomainError):
    status_code = status.HTTP_409_CONFLICT
    code = "hold_limit_reached"
    message = (
        f"You may hold at most {MAX_SEATS_PER_CUSTOMER_AND_SCHEDULE} seats of a performance "
        "at once."
    )
    example_details = {"held": 4, "limit": MAX_SEATS_PER_CUSTOMER_AND_SCHEDULE}


class ReservationNotPayable(DomainError):
    status_code = status.HTTP_409_CONFLICT
    code = "reservation_not_payable"
    message = "This reservation cannot be paid."
    example_details = {"status": "confirmed"}


class ReservationNotCancellable(DomainError):
    status_code = status.HTTP_409_CONFLICT
    code = "reservation_not_cancellable"
    message = "Only a held reservation can be cancelled."
    example_details = {"status": "confirmed"}


class SalesClosed(DomainError):
    status_code = status.HTTP_409_CONFLICT
    code = "sales_closed"
    message = "This performance has started; its seats are no longer on sale."


class HoldExpired(DomainError):
    status_code = status.HTTP_410_GONE
    code = "hold_expired"
    message = "The hold ran out and its seats went to someone else. Hold seats again."
    example_details = {"reservation_id": 314}
