from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ConsoleConfig(AppConfig):
    """The operators' console inside Django admin (docs/console.md): a web layer only, with
    no models of its own; it reads every domain app through its models and selectors."""

    name = "console"
    verbose_name = _("Operator console")
