from celery import shared_task

from . import services


@shared_task(ignore_result=True)
def deliver_webhooks() -> int:
    """Sent after every relay commit that made deliveries (and after a redelivery), and by
    beat every few seconds for retries that fall due and requests that were lost."""
    return services.webhook_deliveries_run()
