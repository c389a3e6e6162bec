from celery import shared_task

from .idempotency import idempotency_records_delete_old


@shared_task(ignore_result=True)
def delete_old_idempotency_records() -> int:
    return idempotency_records_delete_old()
