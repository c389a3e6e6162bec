from django.utils.translation import gettext_lazy as _

from config.errors import DomainError


class SeatMapInvalid(DomainError):
    """An operator's seat-map edit that cannot be done (admin only; not an API answer)."""

    code = "seat_map_invalid"
    message = _("The seat map cannot be generated.")
