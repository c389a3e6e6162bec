"""The wire: which URLs we may call (SSRF), the signature, and one POST.

An endpoint's host is resolved and every address checked when the endpoint is saved, and
again at each delivery; the POST then connects to the very address that was checked (the
hostname still goes into the Host header and TLS's SNI and certificate check), so a DNS
answer that changes in between (rebinding) cannot steer a delivery into our network.
Redirects are not followed (a 3xx is not a 2xx: the delivery is retried), and no proxy is
used. Standard library only: http.client lets us pick the address to connect to.
"""

import hashlib
import hmac
import http.client
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.utils.translation import gettext as _

# What is kept of an endpoint's answer, for the delivery log.
RESPONSE_KEPT_CHARS = 1000
RESPONSE_READ_BYTES = 4096


class UnsafeUrl(Exception):
    """A URL we refuse to call; the message says why, for the operator."""


def address_refused(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Loopback, private, link-local, multicast, reserved, unspecified, or any other range
    that is not globally routable (carrier-grade NAT, documentation, benchmarking...). An
    IPv4 address written as IPv6 (::ffff:10.0.0.1) is judged as the IPv4 one."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    )


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str  # with the query string
    address: str  # the checked IP address to connect to


def url_check(url: str) -> Target:
    """Resolve the URL's host and check every address; returns where to connect. Raises
    UnsafeUrl unless settings.WEBHOOK_ALLOW_PRIVATE_URLS allows non-public addresses."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise UnsafeUrl(_("Only http and https URLs can receive webhooks."))
    if parts.username is not None or parts.password is not None:
        raise UnsafeUrl(_("A webhook URL cannot carry a user name or password."))
    host = parts.hostname
    if not host:
        raise UnsafeUrl(_("The URL has no host."))
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise UnsafeUrl(_("The URL's port is not a number between 1 and 65535.")) from None
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise UnsafeUrl(_("The host %(host)s cannot be resolved.") % {"host": host}) from None
    addresses = list(dict.fromkeys(info[4][0] for info in found))
    if not settings.WEBHOOK_ALLOW_PRIVATE_URLS:
        for address in addresses:
            # A scoped IPv6 address (fe80::1%eth0) is link-local anyway.
            if address_refused(ipaddress.ip_address(address.split("%")[0])):
                raise UnsafeUrl(
                    _(
                        "%(host)s resolves to %(address)s, which is not a public address: "
                        "webhooks are sent to public addresses only "
                        "(WEBHOOK_ALLOW_PRIVATE_URLS allows others)."
                    )
                    % {"host": host, "address": address}
                )
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(scheme=parts.scheme, host=host, port=port, path=path, address=addresses[0])


def signature_header(*, secret: str, body: bytes, timestamp: int) -> str:
    """`t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>" keyed by the secret>`."""
    signed = str(timestamp).encode() + b"." + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


@dataclass(frozen=True)
class Answer:
    """What came of one POST: a status code and the start of the body, or an error."""

    status_code: int | None = None
    body: str = ""
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to the checked address, whatever the hostname resolves to by now."""

    def __init__(self, target: Target, timeout: float):
        super().__init__(target.host, target.port, timeout=timeout)
        self._address = target.address

    def connect(self):
        self.sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, target: Target, timeout: float):
        super().__init__(
            target.host, target.port, timeout=timeout, context=ssl.create_default_context()
        )
        self._address = target.address

    def connect(self):
        sock = socket.create_connection((self._address, self.port), self.timeout)
        # SNI and the certificate are checked against the hostname, not the address.
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def post(*, url: str, body: bytes, headers: dict[str, str], timeout: float) -> Answer:
    """POST `body` to `url`, checking the address first. Never raises: a refused URL, a
    timeout or a broken connection is an Answer with an error. `timeout` bounds the
    connection and each read; reading the answer stops at the deadline too."""
    try:
        target = url_check(url)
    except UnsafeUrl as problem:
        return Answer(error=str(problem))
    connection_class = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
    connection = connection_class(target, timeout)
    deadline = time.monotonic() + timeout
    try:
        connection.request("POST", target.path, body=body, headers=headers)
        response = connection.getresponse()
        chunks, size = [], 0
        while size < RESPONSE_READ_BYTES and time.monotonic() < deadline:
            chunk = response.read1(RESPONSE_READ_BYTES - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        text = b"".join(chunks).decode("utf-8", errors="replace")[:RESPONSE_KEPT_CHARS]
        return Answer(status_code=response.status, body=text)
    except TimeoutError:
        return Answer(error=_("No answer within %(seconds)s s.") % {"seconds": timeout})
    except (OSError, http.client.HTTPException) as error:
        return Answer(error=f"{type(error).__name__}: {error}"[:300])
    finally:
        connection.close()
