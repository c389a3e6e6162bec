from django.utils.translation import gettext_lazy as _
from rest_framework import status

from config.errors import DomainError


class InsufficientBalance(DomainError):
    status_code = status.HTTP_402_PAYMENT_REQUIRED
    code = "insufficient_balance"
    message = _("The wallet balance is too low. Charge the wallet and pay again.")
    example_details = {"balance": 100000, "amount": 330000}


class RefundNotPossible(DomainError):
    status_code = status.HTTP_409_CONFLICT
    code = "refund_not_possible"
    message = _("Only a paid booking with seats still paid can be refunded.")
    example_details = {"status": "refunded"}
