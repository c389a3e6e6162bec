"""Operators see that a customer has an API token and when it was made, never the key
itself (whoever reads it can act as the customer), and can revoke it."""

import pytest
from django.contrib.admin.models import LogEntry
from rest_framework.authtoken.models import Token

from accounts.operator_groups import FINANCE, SALES_STAFF
from tests.conftest import client_for

pytestmark = pytest.mark.django_db

TOKENS = "/admin/accounts/apitoken/"


@pytest.fixture
def token(customer):
    return Token.objects.create(user=customer)


def all_pages(client, token) -> str:
    pages = [
        client.get(TOKENS),
        client.get(TOKENS, {"q": token.user.email}),
        client.get(f"{TOKENS}{token.user_id}/change/"),
        client.get(f"{TOKENS}{token.user_id}/history/"),
    ]
    assert [page.status_code for page in pages] == [200] * len(pages)
    return "\n".join(page.content.decode() for page in pages)


def test_the_token_list_shows_a_prefix_and_never_the_key(operator_client, token):
    text = all_pages(operator_client, token)

    assert f"{token.key[:6]}…" in text
    assert token.user.email in text
    assert token.key not in text
    assert token.key[:7] not in text  # not even one character more


@pytest.mark.parametrize("typed", ["key", "prefix"])
def test_a_search_by_key_finds_nothing(operator_client, token, typed):
    """A search must not confirm a guessed key (the box shows what was typed, no more)."""
    query = token.key if typed == "key" else token.key[:6]

    page = operator_client.get(TOKENS, {"q": query}).content.decode()

    assert "0 results" in page


def test_tokens_cannot_be_added_or_changed(operator_client, token, customer):
    assert operator_client.get(f"{TOKENS}add/").status_code == 403
    operator_client.post(f"{TOKENS}{token.user_id}/change/", {"user": customer.id})
    assert operator_client.get(f"{TOKENS}{token.user_id}/delete/").status_code == 403

    assert Token.objects.get(user=customer).key == token.key


def test_revoking_a_token_logs_the_customer_out_and_keeps_the_key_out_of_the_history(
    operator, operator_client, token, customer
):
    api = client_for(customer)
    assert api.get("/api/v1/accounts/me").status_code == 200

    response = operator_client.post(
        TOKENS, {"action": "revoke", "_selected_action": [token.user_id]}
    )

    assert response.status_code == 302
    assert not Token.objects.filter(user=customer).exists()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token.key}")
    assert api.get("/api/v1/accounts/me").status_code == 401
    entry = LogEntry.objects.get(user=operator)
    assert entry.object_repr == f"Token {token.key[:6]}…"
    assert entry.object_id == str(customer.id)
    assert token.key not in entry.object_repr + entry.change_message


def test_only_the_selected_tokens_are_revoked(operator_client, token):
    other = Token.objects.create(user=token.user.__class__.objects.create(email="b@example.com"))

    operator_client.post(TOKENS, {"action": "revoke", "_selected_action": [token.user_id]})

    assert list(Token.objects.values_list("key", flat=True)) == [other.key]


@pytest.mark.parametrize("group", [SALES_STAFF, FINANCE])
def test_staff_groups_see_tokens_but_cannot_revoke_them(staff_client, token, group):
    client, _ = staff_client(group)

    text = all_pages(client, token)
    client.post(TOKENS, {"action": "revoke", "_selected_action": [token.user_id]})

    assert token.key not in text and 'value="revoke"' not in text
    assert Token.objects.filter(key=token.key).exists()


def test_drf_token_screen_is_gone(operator_client):
    assert operator_client.get("/admin/authtoken/tokenproxy/").status_code == 404
