from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ConcertsConfig(AppConfig):
    name = "concerts"
    verbose_name = _("Catalog")
