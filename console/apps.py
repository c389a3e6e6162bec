from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ConsoleConfig(AppConfig):
    """The operators' console inside Django admin (docs/console.md): a web layer only, with
    no models of its own; it reads every domain app through its models and selectors."""

    name = "console"
    verbose_name = _("Operator console")

    def ready(self) -> None:
        # The admin's front page leads to the console (its own template adds one box).
        from django.contrib import admin

        admin.site.index_template = "console/admin_index.html"
