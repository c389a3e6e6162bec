from celery import shared_task
from django.core.management import call_command


@shared_task
def clear_expired_sessions() -> None:
    """Operators' admin sessions live in the database; drop the expired ones."""
    call_command("clearsessions")
