from celery import shared_task

from . import cancellations, services


@shared_task(ignore_result=True)
def run_refund_job(job_id: int) -> None:
    """Refund every paid reservation of a performance (an operator's job)."""
    cancellations.refund_job_run(job_id=job_id)


@shared_task(ignore_result=True)
def resume_refund_jobs() -> int:
    """Beat sends this every 30 s: a job whose worker died is sent again."""
    return cancellations.refund_jobs_resume()


@shared_task(ignore_result=True)
def pay_waitlist_offer(reservation_id: int) -> None:
    """A waitlist offer was made to an entry that opted in to auto-pay: pay it if it can."""
    services.waitlist_offer_auto_pay(reservation_id=reservation_id)


@shared_task(ignore_result=True)
def pay_pending_waitlist_offers() -> int:
    """Beat sends this every 10 s: auto-pay offers whose nudge was lost."""
    return services.waitlist_offers_auto_pay_pending()
