"""Sales for the console's tests, built through the real services (tests/reservations/
waitlist_helpers.py): holds by admitted customers, wallet payments, the waitlist."""

import pytest

from tests.accounts.factories import UserFactory


@pytest.fixture
def staff_client(db):
    """A staff member with no permissions: admin lets them in, the console's pages do not."""
    from django.test import Client

    client = Client()
    client.force_login(UserFactory(is_staff=True))
    return client


@pytest.fixture
def customer_web_client(customer):
    """A customer logged in to the site's session (not staff)."""
    from django.test import Client

    client = Client()
    client.force_login(customer)
    return client
