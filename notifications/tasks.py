from celery import shared_task

from . import services


@shared_task(ignore_result=True)
def send_customer_messages() -> int:
    """Asked for after every relay commit that made messages, and by beat for what is due
    (retries after their backoff, messages of a worker that died mid-send)."""
    return services.customer_messages_send()
