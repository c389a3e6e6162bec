from django.utils.translation import gettext_lazy as _

from config.errors import DomainError


class InvalidCredentials(DomainError):
    code = "invalid_credentials"
    message = _("Email or password is wrong.")
