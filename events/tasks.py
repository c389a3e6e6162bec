from celery import shared_task

from . import services


@shared_task(ignore_result=True)
def dispatch_events() -> int:
    """Sent after every commit that recorded events, and by beat every few seconds for any
    request that was lost."""
    return services.events_dispatch()


@shared_task(ignore_result=True)
def prune_events() -> int:
    """Beat, hourly: dispatched events past their retention."""
    return services.events_prune()
