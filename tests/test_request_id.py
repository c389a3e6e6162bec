"""One request id follows a request: from the client (or made up), into the answer's header
and error body, onto every log line, into the tasks it starts; tokens never reach the log."""

import io
import json
import logging

import pytest
from celery import shared_task

from config.request_id import JsonFormatter, RequestIdFilter, current_request_id

pytestmark = pytest.mark.django_db


def test_a_clients_request_id_comes_back_in_the_header_and_the_error(customer_client):
    response = customer_client.get(
        "/api/v1/reservations/999999", HTTP_X_REQUEST_ID="checkout-7f3a.b2"
    )

    assert response["X-Request-ID"] == "checkout-7f3a.b2"
    assert response.json()["error"]["request_id"] == "checkout-7f3a.b2"


@pytest.mark.parametrize("sent", [None, "", "has space", 'quote"s', "x" * 129])
def test_a_missing_or_unsafe_request_id_is_replaced(customer_client, sent):
    headers = {} if sent is None else {"HTTP_X_REQUEST_ID": sent}
    response = customer_client.get("/api/v1/concerts", **headers)

    made_up = response["X-Request-ID"]
    assert made_up != sent and len(made_up) == 32 and made_up.isalnum()


def test_log_lines_carry_the_request_id_and_never_the_token(customer_client):
    """django.request logs a 404 (at WARNING, turned on here) through a handler set up as in
    production (the request-id filter, JSON lines): the line carries the request's id, and
    neither the Bearer token nor the queue token the request sent."""
    token = customer_client._credentials["HTTP_AUTHORIZATION"].split()[1]
    output = io.StringIO()
    handler = logging.StreamHandler(output)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("django.request")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING)
    try:
        response = customer_client.get(
            "/api/v1/reservations/999999",
            HTTP_X_REQUEST_ID="req-42",
            HTTP_X_QUEUE_TOKEN="1.secretnonce.1.mac",
        )
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)

    assert response.status_code == 404
    lines = [json.loads(line) for line in output.getvalue().splitlines()]
    assert lines and all(line["request_id"] == "req-42" for line in lines)
    assert token not in output.getvalue() and "secretnonce" not in output.getvalue()


SEEN: list[str | None] = []


@shared_task
def remember_request_id() -> None:
    SEEN.append(current_request_id.get())


def test_a_task_started_by_a_request_runs_under_its_request_id(settings):
    from celery.signals import before_task_publish

    headers: dict = {}
    token = current_request_id.set("req-task-1")
    try:
        before_task_publish.send(sender="remember_request_id", headers=headers)
    finally:
        current_request_id.reset(token)
    assert headers["request_id"] == "req-task-1"

    # The worker side: the task adopts the id from its message headers while it runs.
    SEEN.clear()
    remember_request_id.apply(headers={"request_id": "req-task-1"})
    assert SEEN == ["req-task-1"]
    assert current_request_id.get() is None
