from django.contrib.auth.base_user import BaseUserManager
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from rest_framework.authtoken.models import TokenProxy


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **extra_fields):
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=normalize_email(email), **extra_fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra_fields):
        extra_fields.setdefault("is_staff", False)
        extra_fields.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra_fields)

    def create_superuser(self, email: str, password: str | None = None, **extra_fields):
        extra_fields.setdefault("is_staff", True)
        extra_fields.setdefault("is_superuser", True)
        return self._create_user(email, password, **extra_fields)


def normalize_email(email: str) -> str:
    # The whole address is compared case-insensitively: customers do not remember how they
    # capitalised it at signup.
    return email.strip().lower()


class User(AbstractUser):
    """A customer or an operator (is_staff). Logs in with the email address."""

    username = None
    first_name = None
    last_name = None
    email = models.EmailField(_("email address"), unique=True)
    name = models.CharField(_("name"), max_length=150, blank=True)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    objects = UserManager()

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")
        ordering = ["id"]

    def __str__(self) -> str:
        return self.email

    def get_full_name(self) -> str:
        return self.name or self.email

    def get_short_name(self) -> str:
        return self.name or self.email


class IdempotencyRecord(models.Model):
    """The answer to a write sent with an Idempotency-Key (config/idempotency.py), so a retry
    gets the same answer instead of doing the work twice. Written in the work's own
    transaction: a committed record always has its answer. Per customer, kept 24 hours. Here,
    beneath every domain app, because any app's write view may use it."""

    # No database foreign key: inserting the record would take a shared lock on the
    # customer's row, which that customer's payment in progress holds exclusively.
    user = models.ForeignKey(
        User,
        verbose_name=_("user"),
        on_delete=models.DO_NOTHING,
        related_name="+",
        db_constraint=False,
    )
    key = models.CharField(_("key"), max_length=64)
    fingerprint = models.CharField(
        _("fingerprint"), max_length=64, help_text=_("SHA-256 of method, path and body.")
    )
    # Empty only inside the transaction that does the work, never once committed.
    response_status = models.PositiveSmallIntegerField(_("response status"), null=True, blank=True)
    response_body = models.JSONField(_("response body"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("idempotency record")
        verbose_name_plural = _("idempotency records")
        constraints = [
            models.UniqueConstraint(
                fields=["user", "key"],
                name="idempotency_key_once_per_user",
                violation_error_code="key_reused",
                violation_error_message=_("A customer uses each Idempotency-Key once."),
            ),
        ]
        indexes = [models.Index(fields=["created_at"], name="idempotency_created_at_idx")]

    def __str__(self) -> str:
        return gettext("Idempotency-Key %(key)s of customer %(user)s") % {
            "key": key_prefix(self.key),
            "user": self.user_id,
        }


def key_prefix(key: str) -> str:
    """What operators may see of a secret key: its first 6 characters."""
    return f"{key[:6]}…"


class ApiToken(TokenProxy):
    """A customer's API (Bearer) token as operators see it in admin: never the key, which
    would let whoever reads it act as the customer; only its first characters. A proxy of
    DRF's TokenProxy, whose `pk` is the user's id, so neither URLs, forms nor the admin
    history carry the key either."""

    class Meta:
        proxy = True
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")

    def __str__(self) -> str:
        return gettext("Token %(prefix)s") % {"prefix": key_prefix(self.key)}
