from celery import shared_task
from django.core.management import call_command


@shared_task
def clear_expired_sessions() -> None:
    """Operators' admin sessions live in the database; drop the expired ones."""
    call_command("clearsessions")


@shared_task(ignore_result=True)
def delete_old_idempotency_records() -> int:
    """Idempotency-Key records are kept 24 hours; drop older ones."""
    from config.idempotency import idempotency_records_delete_old

    return idempotency_records_delete_old()
