from celery import shared_task

from . import services


@shared_task(ignore_result=True)
def expire_lapsed_holds() -> int:
    """Beat sends this every few seconds. It only tidies up: reads already treat a lapsed
    hold as expired."""
    return services.reservation_expire_due()
