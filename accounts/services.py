from django.contrib.auth import authenticate
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _
from rest_framework.authtoken.models import Token

from config.errors import ValidationFailed

from .errors import InvalidCredentials
from .models import User, normalize_email


def _email_taken() -> ValidationFailed:
    return ValidationFailed.on("email", _("A customer with this email address already exists."))


def user_signup(*, email: str, password: str, name: str = "") -> tuple[User, str]:
    """Create a customer and their API token. Returns (user, token key)."""
    email = normalize_email(email)
    candidate = User(email=email, name=name)
    try:
        validate_password(password, user=candidate)
    except DjangoValidationError as error:
        raise ValidationFailed.on("password", *error.messages) from None

    if User.objects.filter(email=email).exists():
        raise _email_taken()
    try:
        with transaction.atomic():
            user = User.objects.create_user(email=email, password=password, name=name)
            token = Token.objects.create(user=user)
    except IntegrityError:
        # Two signups with the same address raced past the check above; the unique index
        # on email let exactly one of them in.
        raise _email_taken() from None
    return user, token.key


def user_token_obtain(*, email: str, password: str) -> tuple[User, str]:
    """Log in: the customer's API token for valid credentials. Returns (user, token key)."""
    user = authenticate(email=normalize_email(email), password=password)
    if user is None:  # wrong password, unknown email and inactive users look the same
        raise InvalidCredentials()
    token, _created = Token.objects.get_or_create(user=user)
    return user, token.key
