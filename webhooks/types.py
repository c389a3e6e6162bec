"""The event types an endpoint may subscribe to: the facts the services record
(events.event_record; docs/events.md). One list, for the admin's choice and the docs; it moves
to events/ once that app keeps one."""

from django.utils.translation import gettext_lazy as _

EVENT_TYPES: list[tuple[str, object]] = [
    ("reservation.held", _("Seats held")),
    ("reservation.expired", _("Hold expired")),
    ("reservation.cancelled", _("Reservation cancelled")),
    ("reservation.refunded", _("Reservation refunded")),
    ("payment.confirmed", _("Payment confirmed")),
    ("wallet.charged", _("Wallet charged")),
    ("waitlist.offered", _("Waitlist offer made")),
    ("waitlist.taken", _("Waitlist offer taken")),
    ("waitlist.lapsed", _("Waitlist offer lapsed")),
    ("waitlist.declined", _("Waitlist offer declined")),
    ("sale.opened", _("Sale opened")),
    ("sale.paused", _("Sale paused")),
    ("sale.resumed", _("Sale resumed")),
]
EVENT_TYPE_NAMES = frozenset(name for name, _label in EVENT_TYPES)
