from django.contrib.auth import authenticate
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from rest_framework import status
from rest_framework.authtoken.models import Token

from config.errors import DomainError

from .models import User, normalize_email


class EmailTaken(DomainError):
    status_code = status.HTTP_400_BAD_REQUEST
    code = "validation_error"
    message = "The request has invalid fields; see details."

    def __init__(self):
        super().__init__(details={"email": ["A customer with this email address already exists."]})


class WeakPassword(DomainError):
    status_code = status.HTTP_400_BAD_REQUEST
    code = "validation_error"
    message = "The request has invalid fields; see details."

    def __init__(self, problems: list[str]):
        super().__init__(details={"password": problems})


class InvalidCredentials(DomainError):
    status_code = status.HTTP_400_BAD_REQUEST
    code = "invalid_credentials"
    message = "Email or password is wrong."


def user_signup(*, email: str, password: str, name: str = "") -> tuple[User, str]:
    """Create a customer and their API token. Returns (user, token key)."""
    email = normalize_email(email)
    candidate = User(email=email, name=name)
    try:
        validate_password(password, user=candidate)
    except DjangoValidationError as error:
        raise WeakPassword(list(error.messages)) from None

    if User.objects.filter(email=email).exists():
        raise EmailTaken()
    try:
        with transaction.atomic():
            user = User.objects.create_user(email=email, password=password, name=name)
            token = Token.objects.create(user=user)
    except IntegrityError:
        # Two signups with the same address raced past the check above; the unique index
        # on email let exactly one of them in.
        raise EmailTaken() from None
    return user, token.key


def user_token_obtain(*, email: str, password: str) -> tuple[User, str]:
    """Log in: the customer's API token for valid credentials. Returns (user, token key)."""
    user = authenticate(email=normalize_email(email), password=password)
    if user is None:  # wrong password, unknown email and inactive users look the same
        raise InvalidCredentials()
    token, _ = Token.objects.get_or_create(user=user)
    return user, token.key
