"""Bad input on every endpoint of the schema gets the error shape with a 4xx, never a 500.

Driven by the OpenAPI schema, so an endpoint added later is swept without editing this file.
"""

import io
import re

import pytest
import yaml
from django.core.management import call_command

from tests.concerts.factories import SeatFactory

METHODS = ["get", "post", "put", "patch", "delete"]


def load_schema_paths() -> dict:
    out = io.StringIO()
    call_command("spectacular", stdout=out)
    return yaml.safe_load(out.getvalue())["paths"]


SCHEMA_PATHS = load_schema_paths()
OPERATIONS = {path: {m for m in item if m in METHODS} for path, item in SCHEMA_PATHS.items()}


def concrete(path: str, existing_id: int) -> str:
    """The path with every {parameter} replaced by `existing_id`."""
    return re.sub(r"\{[a-z_]+\}", str(existing_id), path)


def assert_error_shape(response, status: int | None = None):
    assert 400 <= response.status_code < 500, (response.status_code, response.content[:300])
    if status is not None:
        assert response.status_code == status, response.content[:300]
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details", "request_id"}
    assert body["error"]["request_id"] == response["X-Request-ID"]
    assert isinstance(body["error"]["code"], str) and body["error"]["code"]
    assert isinstance(body["error"]["details"], dict)
    return body["error"]


@pytest.fixture
def seat(db):
    seat = SeatFactory()
    # One id that is both a concert and a schedule, so every path template resolves.
    assert seat.schedule.concert_id and seat.schedule_id
    return seat


@pytest.mark.parametrize(
    "path, method",
    [(path, m) for path, allowed in OPERATIONS.items() for m in METHODS if m not in allowed],
)
def test_methods_an_endpoint_does_not_have_are_405s(customer_client, seat, path, method):
    url = concrete(path, seat.schedule.concert_id)

    response = getattr(customer_client, method)(url, {}, format="json")

    assert_error_shape(response, 405)


# Operations that take a body; the others ignore one, as HTTP allows.
POST_PATHS = [path for path, item in SCHEMA_PATHS.items() if "requestBody" in item.get("post", {})]


@pytest.mark.parametrize("path", POST_PATHS)
@pytest.mark.parametrize(
    "body, content_type, status",
    [
        ('{"email": ', "application/json", 400),
        ("[1, 2, 3]", "application/json", 400),
        ('"just a string"', "application/json", 400),
        ("null", "application/json", 400),
        ('{"email": {"nested": true}, "password": [1]}', "application/json", 400),
        ("email=a@b.c", "application/x-www-form-urlencoded", 415),
        ("<xml/>", "text/xml", 415),
        ("\xff\xfe", "application/json", 400),
    ],
)
def test_malformed_bodies_are_4xx_with_the_error_shape(
    customer_client, seat, path, body, content_type, status
):
    url = concrete(path, seat.schedule.concert_id)

    response = customer_client.generic("POST", url, body, content_type=content_type)

    assert_error_shape(response, status)


GET_PATHS_WITH_IDS = [
    path for path, allowed in OPERATIONS.items() if "get" in allowed and "{" in path
]


@pytest.mark.parametrize("path", GET_PATHS_WITH_IDS)
@pytest.mark.parametrize("bad_id", ["0", "987654321", "99999999999999999999999", "-1", "x"])
def test_unknown_ids_are_404s_with_the_error_shape(customer_client, path, bad_id, db):
    url = path.split("{")[0] + bad_id + path.split("}")[1]

    response = customer_client.get(url)

    assert_error_shape(response, 404)


def test_a_huge_json_body_is_refused_cleanly(customer_client, db):
    body = '{"email": "a@example.com", "password": "' + "x" * 3_000_000 + '"}'

    response = customer_client.generic(
        "POST", "/api/v1/accounts/signup", body, content_type="application/json"
    )

    assert_error_shape(response)


# Found by fuzzing the running server (schemathesis and hand probes).


# Deep enough for Python's recursion limit, small enough for the 64 KiB body limit.
@pytest.mark.parametrize("body", ["[" * 5000 + "]" * 5000, '{"a":' * 10_000 + "1" + "}" * 10_000])
def test_deeply_nested_json_is_a_400_not_a_crash(api_client, body):
    response = api_client.generic(
        "POST", "/api/v1/accounts/signup", body, content_type="application/json"
    )

    error = assert_error_shape(response, 400)
    assert error["code"] == "malformed_request"


def test_parse_errors_say_where_without_python_internals(api_client):
    response = api_client.generic(
        "POST", "/api/v1/accounts/token", '{"email": "a@b.c",}', content_type="application/json"
    )

    message = assert_error_shape(response, 400)["message"]
    assert message.startswith("The body is not valid JSON:") and "line 1" in message


@pytest.mark.parametrize(
    "path",
    [
        "/api",
        "/api/",
        "/api/v1/",
        "/api/v1/nope",
        "/api/v2/concerts",
        "/API/V1/CONCERTS",
        "/api/v1/concerts/1/",
        "/api/v1/accounts/me/",
        "/api/v1/concerts/-1",
    ],
)
@pytest.mark.parametrize("debug", [False, True])
def test_unknown_api_paths_are_json_404s_even_with_debug_on(client, settings, path, debug, db):
    settings.DEBUG = debug

    response = client.get(path)

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete", "options"])
@pytest.mark.parametrize("path", ["/api/schema/", "/api/docs/", "/api/redoc/"])
def test_the_docs_refuse_other_methods_in_the_error_shape(client, path, method):
    response = getattr(client, method)(path)

    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_healthz_answers_head_and_refuses_writes_in_the_error_shape(client, db):
    assert client.head("/healthz").status_code == 200

    response = client.post("/healthz")

    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_x_forwarded_for_cannot_dodge_the_login_throttle(api_client, settings, db):
    settings.AUTH_THROTTLE_RATE = "2/minute"

    statuses = [
        api_client.post(
            "/api/v1/accounts/token",
            {"email": "a@example.com", "password": "x"},
            format="json",
            HTTP_X_FORWARDED_FOR=f"10.9.9.{attempt}",
        ).status_code
        for attempt in range(3)
    ]

    assert statuses == [400, 400, 429]


def test_a_throttled_answer_always_says_when_to_retry(api_client, settings, db):
    settings.AUTH_THROTTLE_RATE = "5/minute"
    for _ in range(5):
        api_client.post(
            "/api/v1/accounts/token", {"email": "a@b.c", "password": "x"}, format="json"
        )
    settings.AUTH_THROTTLE_RATE = "2/minute"  # more history than the new rate allows

    response = api_client.post(
        "/api/v1/accounts/token", {"email": "a@b.c", "password": "x"}, format="json"
    )

    assert response.status_code == 429
    assert int(response["Retry-After"]) >= 1


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_a_body_over_the_limit_is_a_413_on_any_api_path(customer_client, method, settings):
    body = '{"pad": "' + "x" * settings.API_MAX_BODY_BYTES + '"}'

    response = getattr(customer_client, method)(
        "/api/v1/wallet/charges", body, content_type="application/json"
    )

    error = assert_error_shape(response, 413)
    assert error["code"] == "payload_too_large"
    assert error["details"] == {"max_bytes": settings.API_MAX_BODY_BYTES}


@pytest.mark.parametrize("method", ["get", "post", "put", "patch", "delete", "options", "head"])
@pytest.mark.parametrize("path", ["/api/v1/nothing-here", "/api/v1/concerts/", "/api/v2/x", "/api"])
def test_unknown_api_paths_are_json_404s_for_every_method_csrf_checks_on(db, method, path):
    """A browser-like client that enforces CSRF: an unknown path is a 404, never Django's
    HTML 'CSRF verification failed' page."""
    from django.test import Client

    response = getattr(Client(enforce_csrf_checks=True), method)(path)

    assert response.status_code == 404
    if method != "head":
        assert response["Content-Type"] == "application/json"
        assert response.json()["error"]["code"] == "not_found"
