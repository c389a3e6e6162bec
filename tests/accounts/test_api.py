import threading

import pytest
from django.db import connection
from rest_framework.test import APIClient

from accounts.models import User
from tests.accounts.factories import DEFAULT_PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


def error_code(response) -> str:
    return response.json()["error"]["code"]


def test_signup_returns_a_working_token(api_client):
    response = api_client.post(
        "/api/v1/accounts/signup",
        {"email": "Jimin@Example.com", "password": "purple-stage-2026", "name": "Jimin"},
        format="json",
    )

    assert response.status_code == 201
    body = response.json()
    assert body["user"]["email"] == "jimin@example.com"
    assert "password" not in body["user"]
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {body['token']}")
    me = api_client.get("/api/v1/accounts/me")
    assert me.status_code == 200
    assert me.json()["email"] == "jimin@example.com"


def test_signup_with_a_taken_email_in_other_case_is_a_validation_error(api_client):
    UserFactory(email="taken@example.com")

    response = api_client.post(
        "/api/v1/accounts/signup",
        {"email": "TAKEN@example.com", "password": "purple-stage-2026"},
        format="json",
    )

    assert response.status_code == 400
    assert error_code(response) == "validation_error"
    assert "email" in response.json()["error"]["details"]
    assert User.objects.count() == 1


@pytest.mark.parametrize("password", ["short", "12345678901", "password123", "jimin@example.com"])
def test_signup_rejects_weak_passwords_and_writes_nothing(api_client, password):
    response = api_client.post(
        "/api/v1/accounts/signup",
        {"email": "jimin@example.com", "password": password},
        format="json",
    )

    assert response.status_code == 400
    assert error_code(response) == "validation_error"
    assert response.json()["error"]["details"]["password"]
    assert not User.objects.exists()


@pytest.mark.parametrize(
    "payload, fields",
    [
        ({}, {"email", "password"}),
        ({"email": "not-an-email", "password": "purple-stage-2026"}, {"email"}),
        ({"email": ["a@b.c"], "password": 12}, {"email"}),
        ({"email": "a@example.com", "password": None}, {"password"}),
        ({"email": "a@example.com", "password": "x" * 500}, {"password"}),
    ],
)
def test_signup_validation_errors_name_each_field(api_client, payload, fields):
    response = api_client.post("/api/v1/accounts/signup", payload, format="json")

    assert response.status_code == 400
    assert error_code(response) == "validation_error"
    assert fields <= set(response.json()["error"]["details"])


def test_malformed_json_and_wrong_content_type_get_the_error_shape(api_client):
    malformed = api_client.generic(
        "POST", "/api/v1/accounts/signup", '{"email": ', content_type="application/json"
    )
    form = api_client.post("/api/v1/accounts/signup", {"email": "a@example.com"})  # multipart

    assert malformed.status_code == 400
    assert error_code(malformed) == "malformed_request"
    assert form.status_code == 415
    assert error_code(form) == "unsupported_media_type"


def test_login_returns_the_customers_token(api_client):
    user = UserFactory(email="jimin@example.com")

    response = api_client.post(
        "/api/v1/accounts/token",
        {"email": "JIMIN@example.com", "password": DEFAULT_PASSWORD},
        format="json",
    )

    assert response.status_code == 200
    assert response.json()["user"]["id"] == user.id
    assert response.json()["token"] == user.auth_token.key


@pytest.mark.parametrize(
    "email, password",
    [("jimin@example.com", "wrong-password"), ("nobody@example.com", DEFAULT_PASSWORD)],
)
def test_login_failures_do_not_say_which_part_was_wrong(api_client, email, password):
    UserFactory(email="jimin@example.com")

    response = api_client.post(
        "/api/v1/accounts/token", {"email": email, "password": password}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "invalid_credentials",
        "message": "Email or password is wrong.",
        "details": {},
        "request_id": response["X-Request-ID"],
    }


def test_inactive_customers_cannot_log_in(api_client):
    UserFactory(email="gone@example.com", is_active=False)

    response = api_client.post(
        "/api/v1/accounts/token",
        {"email": "gone@example.com", "password": DEFAULT_PASSWORD},
        format="json",
    )

    assert error_code(response) == "invalid_credentials"


@pytest.mark.parametrize(
    "header",
    [None, "Bearer", "Bearer not-a-real-token", "Token abc", "Bearer a b"],
)
def test_me_needs_a_valid_bearer_token(api_client, header):
    if header:
        api_client.credentials(HTTP_AUTHORIZATION=header)

    response = api_client.get("/api/v1/accounts/me")

    assert response.status_code == 401
    assert error_code(response) == "not_authenticated"
    assert response["WWW-Authenticate"] == "Bearer"


def test_wrong_method_is_a_405_in_the_error_shape(customer_client):
    response = customer_client.delete("/api/v1/accounts/me")

    assert response.status_code == 405
    assert error_code(response) == "method_not_allowed"


def test_login_is_throttled_per_client(api_client, settings):
    settings.AUTH_THROTTLE_RATE = "2/minute"

    responses = [
        api_client.post(
            "/api/v1/accounts/token", {"email": "a@example.com", "password": "x"}, format="json"
        )
        for _ in range(3)
    ]

    assert [r.status_code for r in responses] == [400, 400, 429]
    assert error_code(responses[2]) == "throttled"
    assert int(responses[2]["Retry-After"]) >= 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_signups_with_one_email_create_one_customer():
    contenders = 10
    barrier = threading.Barrier(contenders)
    statuses: list[int] = []

    def sign_up():
        try:
            barrier.wait()
            response = APIClient().post(
                "/api/v1/accounts/signup",
                {"email": "race@example.com", "password": "purple-stage-2026"},
                format="json",
            )
            statuses.append(response.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=sign_up) for _ in range(contenders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(statuses) == [201] + [400] * (contenders - 1)
    assert User.objects.filter(email="race@example.com").count() == 1
