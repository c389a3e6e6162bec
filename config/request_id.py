"""A request id for every request: taken from the client's (or the proxy's) `X-Request-ID`
when it is a sane token, made up otherwise; answered in `X-Request-ID` and in every error
body as `error.request_id`; written on every log line of the request (`RequestIdFilter`)
and carried into the Celery tasks the request starts (config/celery.py), so one id follows a
customer's request from the proxy to the worker that sent their email.
"""

import logging
import re
import uuid
from contextvars import ContextVar

from django.core.signals import request_finished

HEADER = "X-Request-ID"
# Ids from outside go into logs and answers: letters, digits and - _ . : only, at most 128.
_SANE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

current_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)


def request_id_new() -> str:
    return uuid.uuid4().hex


def request_id_from(value: str | None) -> str:
    """The id a request goes by: the given one when sane, a new one otherwise."""
    if value and _SANE.match(value):
        return value
    return request_id_new()


class RequestIdMiddleware:
    """First in the chain, so that every later answer and log line of the request has it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = request_id_from(request.headers.get(HEADER))
        request.request_id = request_id
        # Left set until the request has finished (below): Django logs a 4xx/5xx answer after
        # the middleware chain has returned, and that line must carry the id too.
        current_request_id.set(request_id)
        response = self.get_response(request)
        response[HEADER] = request_id
        return response


def _request_finished(**kwargs) -> None:
    current_request_id.set(None)


request_finished.connect(_request_finished, dispatch_uid="config.request_id")


class RequestIdFilter(logging.Filter):
    """Puts the current request id (or "-") on every log record as `request_id`."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id.get() or "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line (production): time, level, logger, message, request id, and the
    exception when there is one. The message is what the code logged: no headers, no bodies,
    so tokens and secrets never reach the log unless code logs them (tests/test_logging.py)."""

    def format(self, record: logging.LogRecord) -> str:
        import json

        line = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)
