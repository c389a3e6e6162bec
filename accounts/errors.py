from config.errors import DomainError


class InvalidCredentials(DomainError):
    code = "invalid_credentials"
    message = "Email or password is wrong."
