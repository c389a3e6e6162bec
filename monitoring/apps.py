from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MonitoringConfig(AppConfig):
    name = "monitoring"
    verbose_name = _("Monitoring")

    def ready(self) -> None:
        # Celery's task signals count runs and failures in whichever process runs a task (a
        # worker, or this one in eager mode); connecting them costs a web process nothing.
        from . import worker  # noqa: F401
