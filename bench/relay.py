"""The event relay's rates on this machine: `bin/bench-relay` (python -m bench.relay).

On a scratch database of its own (`test_concerts_relay`, created and dropped here, as the test
runner does), against the real MariaDB: records EVENTS `payment.confirmed` events the way
payments do (in transactions of 100), then times
  1. the relay (`events_dispatch`): claiming the events and fanning each out to the channels
     of EVENT_CHANNELS (a webhook delivery row, a customer email row);
  2. the webhook deliveries to one endpoint: a real HTTP receiver on 127.0.0.1 answering 200;
  3. the customer emails, rendered and sent through Django's locmem backend (no SMTP server:
     what is timed is our work, not a mail server's).
Prints events (or messages) per second for each step and writes results/relay.md.
"""

import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

EVENTS = int(os.environ.get("RELAY_EVENTS", "3000"))
RESULTS = Path(__file__).resolve().parent / "results"


def configure() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("DATABASE_URL", "mysql://root@127.0.0.1:3306/concerts_relay")
    os.environ["DJANGO_ENV"] = "test"
    os.environ["DEBUG"] = "false"
    os.environ["FAST_PASSWORD_HASHER"] = "true"
    os.environ["WEBHOOK_ALLOW_PRIVATE_URLS"] = "true"
    os.environ["EMAIL_BACKEND"] = "django.core.mail.backends.locmem.EmailBackend"
    os.environ["CELERY_TASK_ALWAYS_EAGER"] = "false"
    os.environ.setdefault("REDIS_KEY_PREFIX", f"bench-relay-{os.getpid()}")
    import django

    django.setup()


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 - http.server's name
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def timed(step) -> float:
    started = time.perf_counter()
    step()
    return time.perf_counter() - started


def main() -> int:
    configure()
    from django.contrib.auth.hashers import make_password
    from django.db import connection, transaction
    from django.test.utils import setup_test_environment
    from django.utils import timezone

    from accounts.models import User
    from events.models import Event
    from events.services import event_record, events_dispatch

    setup_test_environment()
    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    rows = []
    try:
        from webhooks.services import webhook_deliveries_run, webhook_endpoint_create

        webhook_endpoint_create(url=f"http://127.0.0.1:{server.server_port}/hook")
        password = make_password("x")
        User.objects.bulk_create(
            User(email=f"relay{i}@example.com", password=password) for i in range(EVENTS)
        )
        customers = list(User.objects.order_by("id").values_list("id", flat=True))
        payload = {
            "payment_id": 1,
            "reservation_id": 1,
            "source": "queue",
            "performance": {
                "schedule_id": 1,
                "concert_id": 1,
                "concert_title": "Blue Hour World Tour",
                "artist": "Haneul",
                "venue": "KSPO Dome",
                "starts_at": "2026-12-20T19:00:00+09:00",
            },
            "seats": [
                {
                    "seat_id": 101,
                    "section": "A",
                    "row": 1,
                    "number": 1,
                    "grade": "VIP",
                    "price": 165000,
                    "booking_fee": 2000,
                }
            ],
            "amount": 167000,
            "tickets_price": 165000,
            "booking_fee": 2000,
            "paid_at": timezone.localtime().isoformat(),
        }

        def record_all():
            for start in range(0, EVENTS, 100):
                with transaction.atomic():
                    for customer_id in customers[start : start + 100]:
                        event_record(
                            type="payment.confirmed",
                            aggregate=("reservation", customer_id),
                            payload={**payload, "customer_id": customer_id},
                        )

        rows.append(("record (in the payments' transactions)", EVENTS, timed(record_all)))
        rows.append(("relay: claim and fan out", EVENTS, timed(events_dispatch)))
        assert not Event.objects.filter(dispatched_at=None).exists()
        rows.append(
            ("webhooks: POST to one endpoint", EVENTS, timed(lambda: webhook_deliveries_run()))
        )
        try:
            from notifications import services as notifications
        except ImportError:
            notifications = None
        if notifications is not None:

            def send_all():
                while notifications.customer_messages_send():
                    pass

            rows.append(("emails: render and send (locmem)", EVENTS, timed(send_all)))
    finally:
        server.shutdown()
        connection.creation.destroy_test_db(connection.settings_dict["NAME"], verbosity=0)

    lines = [
        f"## Event relay ({time.strftime('%Y-%m-%dT%H:%M:%S%z')})",
        "",
        f"- command: `bin/bench-relay` ({EVENTS} payment.confirmed events, one webhook "
        "endpoint on 127.0.0.1, emails to Django's locmem backend)",
        f"- machine: {os.cpu_count()} CPUs",
        "",
        "| step | events | seconds | per second |",
        "|---|--:|--:|--:|",
    ]
    lines += [
        f"| {name} | {count} | {seconds:.2f} | {count / seconds:,.0f} |"
        for name, count, seconds in rows
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "relay.md").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
