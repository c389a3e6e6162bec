"""/metrics under real gunicorn with two workers (config/gunicorn.conf.py): whichever worker
answers a scrape, it counts the requests every worker served."""

import http.client
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ops.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "metrics-" + "g" * 40
MAX_REQUESTS = 400  # a bound on the loop below; two workers share the load long before it

pytestmark = pytest.mark.django_db  # the gunicorn below needs the test database to exist


def request(port: int, path: str, headers=None) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def health_requests_counted(port: int) -> float:
    status, body = request(port, "/metrics", {"Authorization": f"Bearer {TOKEN}"})
    assert status == 200, body
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            if (
                sample.name == "concerts_http_requests_total"
                and sample.labels["route"] == "healthz"
                and sample.labels["status"] == "200"
            ):
                return sample.value
    return 0.0


def pids_that_counted(folder: Path) -> set[int]:
    """The processes that wrote a counter file into the multiprocess folder."""
    return {int(path.stem.rsplit("_", 1)[1]) for path in folder.glob("counter_*.db")}


@pytest.fixture
def gunicorn(django_db_setup, django_db_blocker, tmp_path):
    from django.db import connection

    database = connection.settings_dict
    port = free_port()
    folder = tmp_path / "metrics"
    folder.mkdir()
    (folder / "counter_999999.db").write_bytes(b"")  # a previous run's leftover
    env = {
        **os.environ,
        "DATABASE_URL": (
            f"mysql://{database['USER']}@{database['HOST'] or '127.0.0.1'}:"
            f"{database['PORT'] or 3306}/{database['NAME']}"
        ),
        "BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": "2",
        "ACCESS_LOG": "",
        "DEBUG": "false",
        "METRICS_TOKEN": TOKEN,
        "PROMETHEUS_MULTIPROC_DIR": str(folder),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi:application"]
        + ["-c", "config/gunicorn.conf.py"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if request(port, "/healthz")[0] == 200:
                    break
            except OSError:
                pass
            assert process.poll() is None, "gunicorn exited"
            assert time.monotonic() < deadline, "gunicorn did not answer in 30 s"
            time.sleep(0.2)
        yield port, folder, process.pid
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_one_scrape_sums_the_requests_of_both_workers(gunicorn):
    port, folder, master = gunicorn
    assert not (folder / "counter_999999.db").exists()  # emptied when the master started
    start = health_requests_counted(port)

    # Requests from four clients at once, until both workers have served some.
    sent = 0
    with ThreadPoolExecutor(max_workers=4) as clients:
        while sent < MAX_REQUESTS:
            statuses = list(clients.map(lambda _: request(port, "/healthz")[0], range(20)))
            assert statuses == [200] * 20
            sent += 20
            if len(pids_that_counted(folder) - {master}) >= 2:
                break
    counted = health_requests_counted(port) - start

    assert len(pids_that_counted(folder) - {master}) == 2  # both workers served requests
    assert counted == sent
