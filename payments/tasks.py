from celery import shared_task

from . import cancellations


@shared_task(ignore_result=True)
def run_refund_job(job_id: int) -> None:
    """Refund every paid reservation of a performance (an operator's job)."""
    cancellations.refund_job_run(job_id=job_id)


@shared_task(ignore_result=True)
def resume_refund_jobs() -> int:
    """Beat sends this every 30 s: a job whose worker died is sent again."""
    return cancellations.refund_jobs_resume()
