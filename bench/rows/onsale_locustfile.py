"""The crowd of the on-sale row (onsale.py, next to this file): each Locust user is one
customer who, once, signs up, tops up the wallet, queues for the concert, picks 1-4 seats,
holds them and pays (or cancels, or walks away and lets the hold expire), and then stops.
Locust ends the run when every customer is done, or at its --run-time.

onsale.py runs this file in a Locust process of its own (Locust patches the standard library
with gevent, so no benchmark code imports it). The scenario comes from the environment
(ONSALE_*, below); when Locust stops, the answers per step and status, each customer's outcome
and the queue waits go to the JSON file ONSALE_REPORT.

Each customer connects from an address of its own on the loopback network (127.77.x.y), as a
crowd of real customers would: signup is throttled per client IP (AUTH_THROTTLE_RATE, 30 a
minute by default), and the server runs with its production settings.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import secrets
import time
import uuid
from collections import Counter, defaultdict

import gevent
from locust import HttpUser, constant, events, task
from locust.exception import StopUser
from requests.adapters import HTTPAdapter

CONCERT_ID = int(os.environ.get("ONSALE_CONCERT_ID", "0"))
SCHEDULE_ID = int(os.environ.get("ONSALE_SCHEDULE_ID", "0"))
CUSTOMERS = int(os.environ.get("ONSALE_USERS", "0"))  # the run ends when this many are done
EMAIL_PREFIX = os.environ.get("ONSALE_EMAIL_PREFIX", "onsale")
CHARGE = int(os.environ["ONSALE_CHARGE"])  # won: enough for any hold (bench/rows/onsale.py)
SEED = os.environ.get("ONSALE_SEED", "1")
CANCEL_SHARE = float(os.environ.get("ONSALE_CANCEL_SHARE", "0.1"))
WALK_AWAY_SHARE = float(os.environ.get("ONSALE_WALK_AWAY_SHARE", "0.1"))
REPORT = os.environ.get("ONSALE_REPORT")

RETURNS_WAIT_SECONDS = 2.0  # nothing on sale but seats held by others: look again after this
QUICK_RETRIES = 3  # seats taken (409): re-read the map and try again at once this many times,
BACKOFF_SECONDS = (0.5, 1.5)  # then pause this long (uniform) before each further try
ATTEMPTS = 3  # charge and payment: sent again with the same Idempotency-Key after a 5xx
MAX_ENTRIES = 3  # queue entries per customer (a new one when the admitted session runs out)
BACK_TO_THE_LINE = {"403 queue_not_admitted", "410 queue_token_expired"}

# The answers the scenario expects at each step; Locust counts anything else as a failure.
# A key is the status, plus the error code for error answers ("409 seats_unavailable").
EXPECTED = {
    "signup": {"201"},
    "charge": {"201"},
    "enter": {"200", "201"},
    "poll": {"200", "429 queue_poll_too_early"},
    "seat map": {"200", "403 queue_not_admitted", "410 queue_token_expired"},
    "hold": {"201", "409 seats_unavailable", "403 queue_not_admitted", "410 queue_token_expired"},
    "pay": {"201", "410 hold_expired"},
    "cancel": {"204"},
    "leave": {"204"},
}

# The crowd's tallies (one Locust process, one gevent thread: no locks needed).
answers: dict[str, Counter] = defaultdict(Counter)
outcomes: Counter = Counter()
stage_of: dict[int, str] = {}  # customers not done yet: where they are
admitted: dict[int, float] = {}  # customer -> when first admitted (epoch seconds)
queue_waits: list[float] = []  # seconds from entering the queue to being admitted
hold_conflicts: Counter = Counter()  # 409s per customer who got one
waited_for_returns: set[int] = set()
seats_paid: list[int] = []
run: dict = {"started_at": None, "stopped_at": None, "quit_early": False}
numbers = itertools.count()


class SourceAddressAdapter(HTTPAdapter):
    """Connects from a given local address."""

    def __init__(self, address: str):
        self.address = address  # before HTTPAdapter.__init__, which builds the pool manager
        super().__init__(pool_connections=1, pool_maxsize=1)

    def init_poolmanager(self, connections, maxsize, block=False, **pool_kwargs):
        pool_kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)


def answer_key(response) -> str:
    if not response.status_code:
        return "connection error"
    if response.status_code < 400:
        return str(response.status_code)
    try:
        return f"{response.status_code} {response.json()['error']['code']}"
    except (ValueError, KeyError, TypeError):
        return str(response.status_code)


class Customer(HttpUser):
    wait_time = constant(0)

    def on_start(self) -> None:
        self.number = next(numbers)
        self.rng = random.Random(f"{SEED}-{self.number}")
        self.wanted = self.rng.randint(1, 4)
        draw = self.rng.random()
        self.plan = (
            "cancel"
            if draw < CANCEL_SHARE
            else "walk away"
            if draw < CANCEL_SHARE + WALK_AWAY_SHARE
            else "pay"
        )
        n = self.number
        self.client.mount("http://", SourceAddressAdapter(f"127.77.{n // 250}.{n % 250 + 1}"))
        self.headers: dict[str, str] = {}
        stage_of[n] = "signup"

    # --- the journey ------------------------------------------------------------------------
    @task
    def buy_tickets(self) -> None:
        self.sign_up()
        for _ in range(MAX_ENTRIES):
            queue_token = self.wait_in_queue()
            self.shop(queue_token)  # returns only to go back to the line
        self.done("error: admitted session ran out every time")

    def sign_up(self) -> None:
        # Random, and unlike the email (the similarity validator refuses a password close to it)
        password = secrets.token_urlsafe(18)
        email = f"{EMAIL_PREFIX}-{self.number}@example.com"
        status, key, body = self.call(
            "signup",
            "POST",
            "/api/v1/accounts/signup",
            body={"email": email, "password": password, "name": f"Fan {self.number}"},
        )
        if status != 201:
            self.done(f"error: signup {key}")
        self.headers = {"Authorization": f"Bearer {body['token']}"}
        stage_of[self.number] = "charge"
        status, key, _ = self.call_idempotent(
            "charge", "POST", "/api/v1/wallet/charges", body={"amount": CHARGE}
        )
        if status != 201:
            self.done(f"error: charge {key}")

    def wait_in_queue(self) -> dict:
        """Enter the concert's queue and poll until admitted; the X-Queue-Token header."""
        stage_of[self.number] = "queue"
        status, key, body = self.call("enter", "POST", f"/api/v1/concerts/{CONCERT_ID}/queue")
        if status not in (200, 201):
            self.done(f"error: enter {key}")
        queue_token = {"X-Queue-Token": body["token"]}
        entered = time.monotonic()
        while body["status"] != "admitted":
            if body["status"] != "waiting":  # done or expired: this entry is over
                self.done(f"error: queue entry {body['status']} while waiting")
            # As told (a poll before 80 % of it is refused with 429, and then after Retry-After).
            gevent.sleep(body["poll_after_seconds"] * self.rng.uniform(0.9, 1.0))
            status, key, answer = self.call("poll", "GET", "/api/v1/queue", headers=queue_token)
            if status == 429:
                body = {
                    **body,
                    "poll_after_seconds": answer["error"]["details"]["retry_after_seconds"],
                }
                continue
            if status != 200:
                self.done(f"error: poll {key}")
            body = answer
        queue_waits.append(round(time.monotonic() - entered, 2))
        admitted.setdefault(self.number, time.time())
        return queue_token

    def shop(self, queue_token: dict) -> None:
        """Pick seats from the map and hold them, then pay, cancel or walk away (and stop).
        Returns only if the queue says to wait first (the admitted session ran out)."""
        stage_of[self.number] = "shopping"
        conflicts_in_a_row = 0
        while True:
            status, key, seat_map = self.call(
                "seat map", "GET", f"/api/v1/schedules/{SCHEDULE_ID}/seats", headers=queue_token
            )
            if key in BACK_TO_THE_LINE:
                return
            if status != 200:
                self.done(f"error: seat map {key}")
            free = [seat for seat in seat_map["seats"] if seat["status"] == "available"]
            if not free:
                if any(seat["status"] == "held" for seat in seat_map["seats"]):
                    # Held seats come back on cancel or expiry: stay and look again.
                    waited_for_returns.add(self.number)
                    stage_of[self.number] = "waiting for returned seats"
                    gevent.sleep(RETURNS_WAIT_SECONDS * self.rng.uniform(0.8, 1.0))
                    continue
                self.call("leave", "DELETE", "/api/v1/queue", headers=queue_token)
                self.done("sold out")
            status, key, reservation = self.call(
                "hold",
                "POST",
                "/api/v1/reservations",
                body={"schedule_id": SCHEDULE_ID, "seat_ids": self.pick(free)},
                headers=queue_token,
            )
            if status == 201:
                break
            if key in BACK_TO_THE_LINE:
                return
            if key != "409 seats_unavailable":
                self.done(f"error: hold {key}")
            hold_conflicts[self.number] += 1
            conflicts_in_a_row += 1
            if conflicts_in_a_row > QUICK_RETRIES:
                gevent.sleep(self.rng.uniform(*BACKOFF_SECONDS))
        self.settle(reservation, queue_token)

    def pick(self, free: list[dict]) -> list[int]:
        """As many adjacent-ish seats as wanted (or as are left), nearer the front more often:
        the map in seat order, a window starting at a point biased towards the best seats."""
        free.sort(key=lambda seat: (seat["section"], seat["row"], seat["number"]))
        count = min(self.wanted, len(free))
        start = int((len(free) - count + 1) * self.rng.random() ** 2)
        return [seat["id"] for seat in free[start : start + count]]

    def settle(self, reservation: dict, queue_token: dict) -> None:
        # Whoever waited for returned seats pays: a walk-away among them would put the seats
        # back only after another full hold time, and chains of those would outlast the run.
        patient = self.number in waited_for_returns
        path = f"/api/v1/reservations/{reservation['id']}"
        if self.plan == "cancel":
            stage_of[self.number] = "cancelling"
            status, key, _ = self.call("cancel", "DELETE", path)
            self.call("leave", "DELETE", "/api/v1/queue", headers=queue_token)
            self.done("cancelled" if status == 204 else f"error: cancel {key}")
        if self.plan == "walk away" and not patient:
            self.done("walked away")  # the hold runs out; the sweep puts the seats back
        stage_of[self.number] = "paying"
        status, key, _ = self.call_idempotent("pay", "POST", f"{path}/payment")
        if status == 201:
            seats_paid.append(len(reservation["seats"]))
            self.done("paid")
        self.done(
            "hold expired before paying" if key == "410 hold_expired" else f"error: pay {key}"
        )

    def done(self, outcome: str) -> None:
        outcomes[outcome] += 1
        stage_of.pop(self.number, None)
        if sum(outcomes.values()) >= CUSTOMERS and not run["quit_early"]:
            run["quit_early"] = True  # everyone is done: end the run now, not at --run-time
            gevent.spawn(self.environment.runner.quit)
        raise StopUser()

    # --- HTTP -------------------------------------------------------------------------------
    def call(self, name: str, method: str, path: str, *, body=None, headers=None):
        """One request, named by step; returns (status, answer key, JSON body or {})."""
        with self.client.request(
            method,
            path,
            name=name,
            json=body,
            headers={**self.headers, **(headers or {})},
            catch_response=True,
        ) as response:
            key = answer_key(response)
            answers[name][key] += 1
            if key in EXPECTED[name]:
                response.success()
            else:  # Locust's failures table groups by this message: keep it short
                response.failure(f"{key} {response.text[:160]}" if response.text else key)
            try:
                data = response.json() if response.content else {}
            except ValueError:
                data = {}
        return response.status_code, key, data

    def call_idempotent(self, name: str, method: str, path: str, *, body=None):
        """A money-moving request, sent again with its Idempotency-Key after a 5xx, a broken
        connection or 409 idempotency_in_progress, as a careful client does."""
        headers = {"Idempotency-Key": str(uuid.uuid4())}
        for attempt in range(ATTEMPTS):
            status, key, data = self.call(name, method, path, body=body, headers=headers)
            retry = status == 0 or status >= 500 or key == "409 idempotency_in_progress"
            if not retry or attempt == ATTEMPTS - 1:
                break
            gevent.sleep(1)
        return status, key, data


# --- the report --------------------------------------------------------------------------------
@events.test_start.add_listener
def on_test_start(environment, **kwargs) -> None:
    run["started_at"] = time.time()


def percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def write_report(environment, **kwargs) -> None:
    if not REPORT:
        return
    run["stopped_at"] = run["stopped_at"] or time.time()
    # Locust's own numbers per step, final (its CSV is rewritten only once a second)
    steps = {
        name: {
            "method": method,
            "requests": entry.num_requests,
            "failures": entry.num_failures,
            "requests_per_s": round(entry.total_rps, 2),
            "p50_ms": entry.get_response_time_percentile(0.5),
            "p99_ms": entry.get_response_time_percentile(0.99),
            "max_ms": round(entry.max_response_time),
        }
        for (name, method), entry in environment.stats.entries.items()
    }
    report = {
        **run,
        "customers": CUSTOMERS,
        "steps": steps,
        "answers": {name: dict(counts) for name, counts in answers.items()},
        "unexpected": {
            f"{name}: {key}": n
            for name, counts in answers.items()
            for key, n in counts.items()
            if key not in EXPECTED[name]
        },
        "outcomes": dict(outcomes),
        "unfinished": dict(Counter(stage_of.values())),
        "admitted": len(admitted),
        "admitted_at": sorted(round(at, 2) for at in admitted.values()),
        "queue_wait_s": {
            "n": len(queue_waits),
            "p50": percentile(queue_waits, 0.5),
            "p90": percentile(queue_waits, 0.9),
            "max": max(queue_waits, default=None),
        },
        "customers_with_hold_conflicts": len(hold_conflicts),
        "hold_conflicts": sum(hold_conflicts.values()),
        "waited_for_returned_seats": len(waited_for_returns),
        "seats_paid": sum(seats_paid),
    }
    with open(REPORT, "w") as f:
        json.dump(report, f, indent=2)


@events.test_stop.add_listener
def on_test_stop(environment, **kwargs) -> None:
    run["stopped_at"] = time.time()
    write_report(environment)


events.quitting.add_listener(write_report)
