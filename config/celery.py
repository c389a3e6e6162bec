import os

from celery import Celery
from celery.signals import before_task_publish, task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("concerts")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


# The request id of the request that sent a task travels in the task's message headers and
# is the task's own while it runs (config/request_id.py): a worker's log lines about a
# customer's payment carry the id their request was answered with.
@before_task_publish.connect
def _carry_request_id(headers=None, **kwargs):
    from .request_id import current_request_id

    request_id = current_request_id.get()
    if request_id and headers is not None:
        headers["request_id"] = request_id


@task_prerun.connect
def _adopt_request_id(task=None, **kwargs):
    from .request_id import current_request_id, request_id_new

    request_id = None
    if task is not None:
        # A worker's message puts custom headers on the request itself; apply() keeps them
        # in request.headers.
        request_id = task.request.get("request_id") or (task.request.headers or {}).get(
            "request_id"
        )
    task.request.request_id_token = current_request_id.set(request_id or request_id_new())


@task_postrun.connect
def _drop_request_id(task=None, **kwargs):
    from .request_id import current_request_id

    token = getattr(task.request, "request_id_token", None) if task is not None else None
    if token is not None:
        current_request_id.reset(token)
