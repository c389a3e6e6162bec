"""Endpoint URLs that point into our own network are refused when saved and again at
delivery (SSRF); the operators' screens: the secret once, the delivery log, redelivery."""

import ipaddress
import socket

import pytest
from django.core.exceptions import ValidationError
from django.test import override_settings
from django.utils import timezone

from webhooks import transport
from webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from webhooks.services import webhook_deliveries_run, webhook_endpoint_create

from .conftest import record_events

pytestmark = pytest.mark.django_db

PRIVATE_URLS = [
    "http://127.0.0.1/hook",
    "http://10.20.30.40/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]:8080/hook",
    "http://localhost/hook",
    "http://192.168.0.10/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://0.0.0.0/hook",
]


@pytest.mark.parametrize("url", PRIVATE_URLS)
def test_private_addresses_are_refused_when_saved(url):
    with pytest.raises(ValidationError) as refused:
        webhook_endpoint_create(url=url)

    assert "not a public address" in refused.value.message_dict["url"][0]
    assert WebhookEndpoint.objects.count() == 0


@pytest.mark.parametrize(
    "url, problem",
    [
        ("ftp://8.8.8.8/hook", "Only http and https"),
        ("http://user:pass@8.8.8.8/hook", "user name or password"),
        ("http://no-such-host.invalid/hook", "cannot be resolved"),
    ],
)
def test_other_urls_we_do_not_call(url, problem):
    with pytest.raises(ValidationError) as refused:
        webhook_endpoint_create(url=url)

    assert problem in " ".join(refused.value.message_dict["url"])


def test_a_public_address_is_accepted_and_private_ones_when_allowed():
    webhook_endpoint_create(url="https://8.8.8.8/hooks?token=abc")
    with override_settings(WEBHOOK_ALLOW_PRIVATE_URLS=True):
        webhook_endpoint_create(url="http://10.0.0.5:8000/hook")

    assert WebhookEndpoint.objects.count() == 2


@pytest.mark.parametrize(
    "address", ["100.64.0.1", "224.0.0.1", "240.0.0.1", "fe80::1", "fc00::1", "::", "::1"]
)
def test_every_non_public_range_is_refused(address):
    assert transport.address_refused(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["8.8.8.8", "2001:4860:4860::8888", "211.234.10.1"])
def test_public_addresses_pass(address):
    assert not transport.address_refused(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:{port}/hook", "http://10.1.2.3/hook", "http://169.254.1.1/x"]
)
def test_private_addresses_are_refused_at_delivery(receiver, url):
    """An endpoint saved while private URLs were allowed (or whose name resolved to a public
    address then): with the setting off, its deliveries do not leave."""
    port = receiver.server.server_address[1]
    webhook_endpoint_create(url=url.format(port=port))
    record_events(("wallet.charged", ("wallet", 1), {}))

    with override_settings(WEBHOOK_ALLOW_PRIVATE_URLS=False):
        webhook_deliveries_run(now=timezone.now())

    delivery = WebhookDelivery.objects.get()
    assert receiver.received == []
    assert delivery.status == DeliveryStatus.PENDING and delivery.attempts == 1
    assert "not a public address" in delivery.last_error


def test_dns_rebinding_is_refused_at_delivery(receiver, monkeypatch):
    """hooks.example resolves to a public address when saved, to 127.0.0.1 when sent."""
    answers = {"now": "93.184.215.14"}

    def resolve(host, port, *args, **kwargs):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answers["now"], port))]

    monkeypatch.setattr(transport.socket, "getaddrinfo", resolve)
    with override_settings(WEBHOOK_ALLOW_PRIVATE_URLS=False):
        webhook_endpoint_create(url="http://hooks.example/hook")
        record_events(("wallet.charged", ("wallet", 1), {}))
        answers["now"] = "127.0.0.1"
        webhook_deliveries_run(now=timezone.now())

    assert "127.0.0.1, which is not a public address" in WebhookDelivery.objects.get().last_error


def test_the_post_goes_to_the_checked_address_with_the_hostname_in_host(receiver, monkeypatch):
    port = receiver.server.server_address[1]
    monkeypatch.setattr(
        transport.socket,
        "getaddrinfo",
        lambda host, port, *a, **k: [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))
        ],
    )
    webhook_endpoint_create(url=f"http://hooks.example:{port}/in?key=1")
    record_events(("wallet.charged", ("wallet", 1), {}))

    webhook_deliveries_run(now=timezone.now())

    (request,) = receiver.received
    assert request.path == "/in?key=1"
    assert request.headers["Host"] == f"hooks.example:{port}"
    assert WebhookDelivery.objects.get().status == DeliveryStatus.DELIVERED


# --- Admin -------------------------------------------------------------------------------------


def test_admin_adds_an_endpoint_and_shows_its_secret_once(operator_client):
    with override_settings(WEBHOOK_ALLOW_PRIVATE_URLS=True):
        added = operator_client.post(
            "/admin/webhooks/webhookendpoint/add/",
            {
                "description": "CRM",
                "url": "http://10.0.0.7/hooks",
                "event_types": ["payment.confirmed", "reservation.refunded"],
                "active": "on",
                "new_secret": "",
            },
        )
    endpoint = WebhookEndpoint.objects.get()
    change = operator_client.get(f"/admin/webhooks/webhookendpoint/{endpoint.id}/change/")

    assert added.status_code == 200
    assert endpoint.secret.startswith("whsec_") and len(endpoint.secret) > 40
    assert endpoint.event_types == ["payment.confirmed", "reservation.refunded"]
    assert endpoint.secret in added.content.decode()
    assert endpoint.secret not in change.content.decode()
    assert endpoint.secret[-4:] in change.content.decode()  # masked
    assert "Delivery log" in change.content.decode()


def test_admin_refuses_a_private_url_with_a_clear_message(operator_client):
    page = operator_client.post(
        "/admin/webhooks/webhookendpoint/add/",
        {"description": "", "url": "http://169.254.169.254/", "active": "on", "new_secret": ""},
    )

    assert page.status_code == 200
    assert "169.254.169.254, which is not a public address" in page.content.decode()
    assert WebhookEndpoint.objects.count() == 0


def test_the_delivery_log_and_redelivery(operator_client, receiver):
    endpoint = webhook_endpoint_create(url=receiver.url("/hook"))
    record_events(("wallet.charged", ("wallet", 1), {}), ("wallet.charged", ("wallet", 2), {}))
    webhook_deliveries_run(now=timezone.now())
    delivered, failed = WebhookDelivery.objects.order_by("id")
    WebhookDelivery.objects.filter(id=failed.id).update(status=DeliveryStatus.FAILED)

    log = operator_client.get(f"/admin/webhooks/webhookdelivery/?endpoint__id__exact={endpoint.id}")
    redelivered = operator_client.post(
        "/admin/webhooks/webhookdelivery/",
        {"action": "redeliver", "_selected_action": [delivered.id, failed.id]},
        follow=True,
    )

    assert log.status_code == 200 and "wallet.charged" in log.content.decode()
    assert "2 deliveries will be sent again." in redelivered.content.decode()
    assert set(WebhookDelivery.objects.values_list("status", "attempts", "first_attempt_at")) == {
        ("pending", 0, None)
    }
    webhook_deliveries_run(now=timezone.now())
    assert len(receiver.received) == 4
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"delivered"}
