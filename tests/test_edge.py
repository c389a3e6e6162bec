"""The production shape's edge, for real: gunicorn with config/gunicorn.conf.py, and nginx
with ops/nginx/concerts.conf.template in front of it. Every answer of either, whatever the
fault of the request, is in the API's one error shape; slow clients cost nginx, not the
sync workers."""

import http.client
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ops.nginx import TEMPLATE, Nginx, nginx_binary

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [
    # The gunicorn below needs the test database to exist (the tests write nothing).
    pytest.mark.django_db,
    pytest.mark.skipif(nginx_binary() is None, reason="nginx is not installed"),
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(port: int, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            status, _, _ = request(port, "GET", "/healthz")
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"nothing answered on port {port}")


def request(port: int, method: str, path: str, body: bytes | None = None, headers=None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


@pytest.fixture(scope="module")
def gunicorn(django_db_setup, django_db_blocker):
    """Two sync workers on the test database and this run's Redis prefix."""
    from django.db import connection

    database = connection.settings_dict  # the test database, made by django_db_setup
    name = database["NAME"]
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": (
            f"mysql://{database['USER']}@{database['HOST'] or '127.0.0.1'}:"
            f"{database['PORT'] or 3306}/{name}"
        ),
        "BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": "2",
        "ACCESS_LOG": "",
        "DEBUG": "false",
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi:application",
            "-c",
            "config/gunicorn.conf.py",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(port)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=20)


@pytest.fixture(scope="module")
def proxy(gunicorn, tmp_path_factory):
    with Nginx(
        folder=tmp_path_factory.mktemp("nginx"),
        listen=free_port(),
        upstreams=[f"127.0.0.1:{gunicorn}"],
    ) as nginx:
        wait_for(nginx.listen)
        yield nginx.listen


def error_of(body: bytes) -> dict:
    parsed = json.loads(body)
    assert set(parsed) == {"error"}
    assert set(parsed["error"]) == {"code", "message", "details", "request_id"}
    assert parsed["error"]["request_id"]
    return parsed["error"]


@pytest.mark.parametrize("through", ["proxy", "gunicorn"])
@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE"])
def test_unknown_api_paths_are_json_404s(request_fixture, through, method):
    port = request_fixture(through)

    status, headers, body = request(port, method, "/api/v1/concerts/", b"{}")

    assert status == 404
    assert headers["Content-Type"] == "application/json"
    assert error_of(body)["code"] == "not_found"


@pytest.fixture
def request_fixture(request):
    return lambda name: request.getfixturevalue(name)


@pytest.mark.parametrize(
    "through, status, code",
    [("proxy", 414, "uri_too_long"), ("gunicorn", 414, "uri_too_long")],
)
def test_a_request_line_too_long(request_fixture, through, status, code):
    answer_status, headers, body = request(
        request_fixture(through), "GET", "/api/v1/" + "a" * 10_000
    )

    assert answer_status == status
    assert "application/json" in headers["Content-Type"]
    assert error_of(body)["code"] == code


@pytest.mark.parametrize("through", ["proxy", "gunicorn"])
def test_headers_too_large(request_fixture, through):
    status, headers, body = request(
        request_fixture(through), "GET", "/api/v1/concerts", headers={"X-Big": "b" * 10_000}
    )

    assert status == 431
    assert "application/json" in headers["Content-Type"]
    assert error_of(body)["code"] == "request_headers_too_large"


@pytest.mark.parametrize("through", ["proxy", "gunicorn"])
def test_a_body_too_large(request_fixture, through):
    status, headers, body = request(
        request_fixture(through),
        "POST",
        "/api/v1/accounts/signup",
        b'{"pad": "' + b"x" * 100_000 + b'"}',
        {"Content-Type": "application/json"},
    )

    assert status == 413
    assert "application/json" in headers["Content-Type"]
    assert error_of(body)["code"] == "payload_too_large"


def test_no_gunicorn_answering_is_a_503_with_retry_after(tmp_path):
    with Nginx(
        folder=tmp_path, listen=free_port(), upstreams=[f"127.0.0.1:{free_port()}"]
    ) as nginx:
        status, headers, body = request(nginx.listen, "POST", "/api/v1/wallet/charges", b"{}")

    assert status == 503
    assert headers["Retry-After"] == "1"
    assert error_of(body)["code"] == "service_unavailable"


def test_several_web_nodes_and_one_of_them_down(gunicorn, tmp_path):
    """The proxy in front of several gunicorns (bin/bench --web-nodes): a node that refuses
    connections costs no request, the others answer every one."""
    up, down = f"127.0.0.1:{gunicorn}", [f"127.0.0.1:{free_port()}" for _ in range(2)]
    with Nginx(folder=tmp_path, listen=free_port(), upstreams=[down[0], up, down[1]]) as nginx:
        wait_for(nginx.listen)
        statuses = [request(nginx.listen, "GET", "/api/v1/concerts")[0] for _ in range(12)]

    assert statuses == [200] * 12


def test_an_answer_that_takes_too_long_is_a_504(tmp_path):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts, never answers
    upstream = f"127.0.0.1:{silent.getsockname()[1]}"
    try:
        with Nginx(
            folder=tmp_path, listen=free_port(), upstreams=[upstream], read_timeout="1s"
        ) as nginx:
            status, _, body = request(nginx.listen, "GET", "/api/v1/concerts")
    finally:
        silent.close()

    assert status == 504
    assert error_of(body)["code"] == "gateway_timeout"


def test_slow_clients_do_not_take_the_api_down(proxy):
    """Fifty clients send half a request each and stall (gunicorn has two sync workers):
    nginx holds them, and a normal request still answers."""
    stalled = []
    for _ in range(50):
        client = socket.create_connection(("127.0.0.1", proxy))
        client.sendall(b"POST /api/v1/accounts/token HTTP/1.1\r\nHost: x\r\nContent-Len")
        stalled.append(client)
    try:
        status, _, body = request(proxy, "GET", "/healthz")
    finally:
        for client in stalled:
            client.close()

    assert status == 200
    assert json.loads(body)["status"] == "ok"


def test_the_proxys_error_bodies_are_the_catalogs():
    from config.openapi import error_catalog

    catalog = error_catalog()
    bodies = re.findall(r"return (\d{3}) '(\{.*\})';", TEMPLATE.read_text())

    assert len(bodies) == 7
    for status, raw in bodies:
        error = json.loads(raw.replace("\\'", "'"))["error"]
        assert catalog[error["code"]].status_code == int(status), error["code"]
        assert catalog[error["code"]].message == error["message"], error["code"]
