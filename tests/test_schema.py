import io

import pytest
import yaml
from django.core.management import call_command

HTTP_METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture(scope="module")
def schema() -> dict:
    out = io.StringIO()
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=out)
    return yaml.safe_load(out.getvalue())


def operations(schema: dict):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield path, method, operation


def test_schema_is_valid_without_warnings(schema):
    assert schema["openapi"].startswith("3.")


def test_schema_lists_the_contract_paths(schema):
    assert {
        "/api/v1/accounts/signup",
        "/api/v1/accounts/token",
        "/api/v1/accounts/me",
        "/api/v1/concerts",
        "/api/v1/concerts/{concert_id}",
        "/api/v1/concerts/{concert_id}/schedules",
        "/api/v1/schedules/{schedule_id}/seats",
    } <= set(schema["paths"])


def test_every_operation_documents_success_and_error_examples(schema):
    for path, method, operation in operations(schema):
        responses = operation["responses"]
        successes = [code for code in responses if code.startswith("2")]
        errors = [code for code in responses if code[0] in "45"]
        assert successes, f"{method} {path} has no success response"
        assert errors, f"{method} {path} documents no error"
        for code in errors:
            content = responses[code]["content"]["application/json"]
            assert content["schema"] == {"$ref": "#/components/schemas/Error"}, (path, code)
            assert content["examples"], f"{method} {path} {code} has no example"
        for code in successes:
            if code == "204":
                continue  # no content, nothing to exemplify
            assert responses[code]["content"]["application/json"]["examples"], (path, code)


def test_bearer_authentication_is_documented(schema):
    schemes = schema["components"]["securitySchemes"]
    assert any(s.get("scheme") == "bearer" for s in schemes.values())


@pytest.mark.django_db
def test_models_and_migrations_agree():
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


def test_swagger_ui_loads_its_assets_locally(client):
    response = client.get("/api/docs/")

    assert response.status_code == 200
    page = response.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in page
    assert "cdn" not in page.lower()


def test_swagger_assets_are_served(client):
    response = client.get("/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js")

    assert response.status_code == 200
