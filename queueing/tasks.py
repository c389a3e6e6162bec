from celery import shared_task

from . import services


@shared_task(ignore_result=True)
def admit_waiting_customers() -> int:
    """Beat sends this every second: one admission step for every concert on sale."""
    return services.queue_admit_all()
