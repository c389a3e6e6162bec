"""A real HTTP receiver on 127.0.0.1 for the webhook tests, and events to send it."""

import json
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db import transaction
from django.test import override_settings

from events.services import event_record, events_dispatch


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int  # what the receiver answered (possibly after the sender gave up)

    @property
    def event(self) -> dict:
        return json.loads(self.body)


# behaviour(path, nth request of this event at this path, from 1) -> (status, seconds to wait)
Behaviour = Callable[[str, int], tuple[int, float]]


class Receiver:
    """Records every POST (in the order they arrive) and answers as `behaviour` says."""

    def __init__(self):
        self.received: list[Received] = []
        self.behaviour: Behaviour = lambda path, nth: (200, 0)
        self._tries: dict[tuple[str, str], int] = defaultdict(int)
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                event_id = json.loads(body)["id"]
                with receiver._lock:
                    receiver._tries[self.path, event_id] += 1
                    nth = receiver._tries[self.path, event_id]
                status, wait = receiver.behaviour(self.path, nth)
                with receiver._lock:
                    receiver.received.append(
                        Received(self.path, dict(self.headers.items()), body, status)
                    )
                time.sleep(wait)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "text/plain")
                    self.end_headers()
                    self.wfile.write(b"ok" if status < 300 else b"not now")
                except OSError:  # the sender gave up waiting
                    pass

            def log_message(self, format, *args):
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass

        self.server = Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def at(self, path: str) -> list[Received]:
        return [request for request in self.received if request.path == path]


@pytest.fixture
def receiver():
    """A receiver on 127.0.0.1 (private URLs allowed while it runs)."""
    receiver = Receiver()
    receiver.thread.start()
    with override_settings(WEBHOOK_ALLOW_PRIVATE_URLS=True):
        yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


def record_events(*facts: tuple[str, tuple[str, object], dict]) -> list:
    """Record events in one transaction, like a service, and let the relay fan them out."""
    with transaction.atomic():
        events = [
            event_record(type=type, aggregate=aggregate, payload=payload)
            for type, aggregate, payload in facts
        ]
    events_dispatch()
    return events
