from django.utils.translation import gettext_lazy as _
from rest_framework import status

from config.errors import DomainError


class SeatsUnavailable(DomainError):
    status_code = status.HTTP_409_CONFLICT
    code = "seats_unavailable"
    message = _("Some of these seats are already taken.")
    example_details = {"seat_ids": [102]}


class TicketLimitReached(DomainError):
    status_code = status.HTTP_409_CONFLICT
    code = "ticket_limit_reached"
    message = _("You have reached the number of tickets one customer may have for a performance.")
    example_details = {"held": 1, "bought": 2, "waiting": 1, "limit": 4}

    @classmethod
    def of(cls, *, held: int, bought: int, waiting: int, limit: int) -> "TicketLimitReached":
        numbers = {"limit": limit, "held": held, "bought": bought, "waiting": waiting}
        text = (
            _(
                "One customer may have at most %(limit)s tickets for a performance: you hold "
                "%(held)s, have bought %(bought)s and wait for %(waiting)s on the waitlist."
            )
            if waiting
            else _(
                "One customer may have at most %(limit)s tickets for a performance: you hold "
                "%(held)s and have bought %(bought)s."
            )
        )
        return cls(
            text % numbers,
            details={"held": held, "bought": bought, "waiting": waiting, "limit": limit},
        )


class ReservationNotPayable(DomainError):
    status_code = status.HTTP_409_CONFLICT
    code = "reservation_not_payable"
    message = _("This reservation cannot be paid.")
    example_details = {"status": "confirmed"}


class ReservationNotCancellable(DomainError):
    status_code = status.HTTP_409_CONFLICT
    code = "reservation_not_cancellable"
    message = _("This reservation cannot be cancelled in its state.")
    example_details = {"status": "confirmed"}


class SalesClosed(DomainError):
    status_code = status.HTTP_409_CONFLICT
    code = "sales_closed"
    message = _("This performance has started; its seats are no longer on sale.")


class HoldExpired(DomainError):
    status_code = status.HTTP_410_GONE
    code = "hold_expired"
    message = _("The hold ran out; its seats are back on sale. Hold seats again.")
    example_details = {"reservation_id": 314}


class CancellationClosed(DomainError):
    status_code = status.HTTP_409_CONFLICT
    code = "cancellation_closed"
    message = _("This booking can no longer be cancelled: the cut-off has passed.")
    example_details = {"cutoff": "2026-12-19T17:00:00+09:00"}


class SeatsAvailable(DomainError):
    status_code = status.HTTP_409_CONFLICT
    code = "seats_available"
    message = _("Seats of these grades are on sale now: hold them instead of waiting.")
    example_details = {"available": 3, "grades": ["R"]}


class WaitlistClosed(DomainError):
    status_code = status.HTTP_409_CONFLICT
    code = "waitlist_closed"
    message = _("This performance takes no waitlist entries.")


class WaitlistEntryExists(DomainError):
    status_code = status.HTTP_409_CONFLICT
    code = "waitlist_entry_exists"
    message = _(
        "You are already on this performance's waitlist with another request: leave it "
        "first to wait for something else."
    )
    example_details = {"entry_id": 12}
