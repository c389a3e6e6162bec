"""The on-sale load that runs through every fault: threads of simulated customers, each doing
what a real one does with the API, and retrying the way a well-behaved client does.

- Shoppers (the sale concert): enter the queue, poll at the server's pace (at most every
  2 s), read the seat map once admitted, hold 1-2 seats (other seats after a 409), then pay
  (after a moment's thought, with an Idempotency-Key), cancel, or walk away and let the hold
  run out. Then the next customer of the pool takes the thread: the load never ends.
- Line keepers (the line concert): wait in a slow line and poll; one who is let in leaves
  and queues again at the back. Their places are what "places kept" is checked on.
- Chargers: top up random shoppers' wallets (Idempotency-Key) at a steady pace, so that
  charges are measured in every phase.

Every call that the service answers 502/503/504 (or does not answer) is retried after its
Retry-After: a write with the same Idempotency-Key, until a definite answer. A customer who
is refused a place it had (an entry that ended while it was waiting, an admitted session
refused before its end) is recorded as a lost place.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime

from .client import Answer, Api, Recorder
from .seed import Customer, Sale

POLL_CAP_SECONDS = 2.0  # shoppers poll at the server's poll_after_seconds, at least this often
THINK_SECONDS = (0.0, 8.0)  # between the hold and the payment: payments spread over a fault
CANCEL_SHARE, WALK_AWAY_SHARE = 0.10, 0.15  # the rest pay
SEAT_CHOICE = 30  # seats are picked among the first free ones: customers want the front
HOLD_ATTEMPTS = 4
WRITE_PATIENCE_SECONDS = 90  # a customer retries a write this long, then gives up
CALL_PATIENCE_SECONDS = 120  # any other call
CHARGERS = 3
CHARGE_PAUSE_SECONDS = (0.3, 0.9)
LINE_KEEPER_THREADS = 10
LIVE = ("waiting", "paused", "admitted")


class Stopping(Exception):
    """The load is being stopped: leave whatever the customer was doing."""


@dataclass
class Fan:
    """A customer (shopper or line keeper) and where their queue entry stands, as far as
    they know."""

    customer: Customer
    queue_token: str | None = None
    entry: str | None = None  # waiting | paused | admitted | done | expired | left | refused
    poll_after: float = 1.0
    admitted_until: datetime | None = None

    @property
    def user_id(self) -> int:
        return self.customer.user_id


class FanPool:
    """The shoppers not in a thread's hands right now; a round takes one and gives it back."""

    def __init__(self, shoppers: list[Fan], rng: random.Random):
        self._idle = list(shoppers)
        rng.shuffle(self._idle)
        self._lock = threading.Lock()

    def take(self) -> Fan:
        with self._lock:
            return self._idle.pop(0)

    def give_back(self, shopper: Fan) -> None:
        with self._lock:
            self._idle.append(shopper)


class Behaviour(threading.Thread):
    """What every simulated customer thread shares: its API client, the stop signal, waits
    that end at once when the load stops, and retries after Retry-After."""

    def __init__(
        self, name: str, *, url: str, recorder: Recorder, stop: threading.Event, seed: str
    ):
        super().__init__(name=name, daemon=True)
        self.api = Api(url, recorder)
        self.recorder, self.stop = recorder, stop
        self.rng = random.Random(seed)
        self.error: BaseException | None = None
        self.retried = False

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                self.act()
        except Stopping:
            pass
        except BaseException as error:  # kept for the report: a broken customer is a finding
            self.error = error
        finally:
            self.api.close()

    def act(self) -> None:
        raise NotImplementedError

    def pause(self, seconds: float) -> None:
        if self.stop.wait(max(0.0, seconds)):
            raise Stopping()

    def call(self, fan: Fan, kind: str, method: str, path: str, **options) -> Answer:
        customer = fan.customer
        return self.api.call(
            kind, method, path, bearer=customer.bearer, user_id=customer.user_id, **options
        )

    def until_answered(self, fan: Fan, kind: str, method: str, path: str, **options) -> Answer:
        """The call, again after each Retry-After while the service is unavailable.
        `self.retried` says afterwards whether it took more than one attempt."""
        deadline = self.recorder.now() + CALL_PATIENCE_SECONDS
        self.retried = False
        while True:
            answer = self.call(fan, kind, method, path, **options)
            if not answer.unavailable or self.recorder.now() > deadline:
                return answer
            self.retried = True
            self.pause(answer.wait_before_retry())

    def write_once(
        self,
        fan: Fan,
        kind: str,
        path: str,
        *,
        body: dict | None = None,
        subject: int | None = None,
        on_answer=None,
    ) -> Answer:
        """A money write under one Idempotency-Key, retried with the same key until the
        service gives a definite answer. `on_answer(answer)` may ask for another go (True),
        e.g. after topping up an empty wallet: the key is not used up by a refusal."""
        key = str(uuid.uuid4())
        chain = self.recorder.chain(kind, fan.user_id, key, subject)
        deadline = self.recorder.now() + WRITE_PATIENCE_SECONDS
        while True:
            answer = self.call(
                fan, kind, "POST", path, body=body, idempotency_key=key, subject=subject
            )
            chain.attempts.append(answer)
            if answer.unavailable:
                if self.recorder.now() > deadline:
                    chain.outcome = "gave up"
                    return answer
                self.pause(answer.wait_before_retry())
                continue
            if on_answer is not None and on_answer(answer):
                continue
            chain.outcome = f"{answer.status} {answer.code or ''}".strip()
            return answer

    def entered(self, fan: Fan, answer: Answer, *, concert_id: int, was_live: bool):
        """Record a new entry, and what the answer to entering says about the customer's
        previous one: a new entry (201) while that one was live means the queue lost it;
        a live entry given back (200) though the customer had ended theirs means a finished
        entry came back to life (unless an earlier attempt of this call, unanswered, made
        it)."""
        token = answer.body["token"]
        if answer.status == 201 or self.retried:
            self.recorder.entry_made(user_id=fan.user_id, token=token)
        if answer.status == 201 and was_live:
            self.recorder.place_lost(
                user_id=fan.user_id,
                concert_id=concert_id,
                how=f"entered again with a live {fan.entry} entry's token: a new entry "
                "at the back (201) instead of the old one",
                old_token=fan.queue_token,
                new_token=token,
            )
        elif answer.status == 200 and not was_live and not self.retried:
            self.recorder.entry_revived(
                user_id=fan.user_id,
                concert_id=concert_id,
                how=f"entering after the entry had ended ({fan.entry}) gave back a live "
                f"entry, {answer.body['status']}",
                token=token,
                previous_token=fan.queue_token,
            )

    def charge(self, fan: Fan, amount: int) -> Answer:
        answer = self.write_once(fan, "charge", "/api/v1/wallet/charges", body={"amount": amount})
        if answer.status == 201:
            self.recorder.acknowledged(
                "charge", answer, entry_id=answer.body["transaction"]["id"], amount=amount
            )
        return answer


class ShopperThread(Behaviour):
    def __init__(self, number: int, *, sale: Sale, customers: FanPool, **common):
        super().__init__(f"shopper-{number}", **common)
        self.sale, self.customers = sale, customers

    def act(self) -> None:
        shopper = self.customers.take()
        try:
            self.shop(shopper)
        finally:
            self.customers.give_back(shopper)

    # --- one round: a performance, the line, seats, then pay, cancel or walk away -----------
    def shop(self, shopper: Fan) -> None:
        schedule_id = self.choose_performance(shopper)
        if schedule_id is None:
            self.pause(2)
            return
        if not self.wait_in_line(shopper):
            return
        reservation = self.hold_seats(shopper, schedule_id)
        if reservation is None:
            self.leave_line(shopper)
            return
        plan = self.rng.random()
        if plan < CANCEL_SHARE:
            self.cancel(shopper, reservation)
            self.leave_line(shopper)
        elif plan < CANCEL_SHARE + WALK_AWAY_SHARE:
            self.leave_line(shopper)  # the hold runs out by itself; the sweep tidies up
        else:
            self.pause(self.rng.uniform(*THINK_SECONDS))
            if not self.pay(shopper, reservation):
                self.leave_line(shopper)

    def choose_performance(self, shopper: Fan) -> int | None:
        """The first performance with seats left: everyone wants the same night."""
        path = f"/api/v1/concerts/{self.sale.concert_id}/schedules"
        answer = self.until_answered(shopper, "schedules", "GET", path)
        if answer.status != 200:
            return None
        for schedule in answer.body["results"]:
            if schedule["available_seats"] >= 2:
                return schedule["id"]
        return None

    def wait_in_line(self, shopper: Fan) -> bool:
        """Enter the queue and poll until admitted; False if the entry could not be made."""
        while True:
            state = shopper.entry
            if state in ("waiting", "paused"):
                self.pause(min(shopper.poll_after, POLL_CAP_SECONDS) * self.rng.uniform(0.8, 1))
                state = self.poll(shopper)
            elif state != "admitted" or not self.session_running(shopper):
                state = self.enter(shopper)
                if state is None:
                    self.pause(2)
                    return False
            if state == "admitted":
                return True

    def session_running(self, shopper: Fan) -> bool:
        until = shopper.admitted_until
        return until is not None and until.timestamp() > time.time() + 1

    def enter(self, shopper: Fan) -> str | None:
        concert_id = self.sale.concert_id
        was_live = shopper.entry in LIVE and self.entry_still_live(shopper)
        answer = self.until_answered(
            shopper,
            "enter",
            "POST",
            f"/api/v1/concerts/{concert_id}/queue",
            queue_token=shopper.queue_token if was_live else None,
        )
        if answer.status not in (200, 201):
            return None
        self.entered(shopper, answer, concert_id=concert_id, was_live=was_live)
        shopper.queue_token = answer.body["token"]
        self.took_status(shopper, answer.body)
        return shopper.entry

    def entry_still_live(self, shopper: Fan) -> bool:
        return shopper.entry != "admitted" or self.session_running(shopper)

    def poll(self, shopper: Fan) -> str:
        concert_id = self.sale.concert_id
        answer = self.until_answered(
            shopper, "poll", "GET", "/api/v1/queue", queue_token=shopper.queue_token
        )
        if answer.status != 200:
            if shopper.entry in LIVE and not answer.unavailable:  # (a long outage is no refusal)
                self.recorder.place_lost(
                    user_id=shopper.user_id,
                    concert_id=concert_id,
                    how=f"a poll of a {shopper.entry} entry was refused: {answer.status} "
                    f"{answer.code}",
                    token=shopper.queue_token,
                )
            shopper.entry = "refused"
            return shopper.entry
        before = shopper.entry
        self.took_status(shopper, answer.body)
        if before in ("waiting", "paused") and shopper.entry in ("done", "expired"):
            self.recorder.place_lost(
                user_id=shopper.user_id,
                concert_id=concert_id,
                how=f"a waiting entry, polled every few seconds, became {shopper.entry}",
                token=shopper.queue_token,
            )
        return shopper.entry

    def took_status(self, shopper: Fan, body: dict) -> None:
        """What the queue says of the entry, as the customer keeps it."""
        shopper.entry = body["status"]
        shopper.poll_after = body.get("poll_after_seconds") or 1
        until = body.get("admitted_until")
        shopper.admitted_until = datetime.fromisoformat(until) if until else None

    def hold_seats(self, shopper: Fan, schedule_id: int) -> dict | None:
        for _ in range(HOLD_ATTEMPTS):
            seat_map = self.until_answered(
                shopper,
                "seat map",
                "GET",
                f"/api/v1/schedules/{schedule_id}/seats",
                queue_token=shopper.queue_token,
            )
            if seat_map.status != 200:
                self.refused_at_the_gate(shopper, seat_map)
                return None
            free = [s["id"] for s in seat_map.body["seats"] if s["status"] == "available"]
            if not free:
                return None
            wanted = self.rng.sample(free[:SEAT_CHOICE], min(len(free), self.rng.choice((1, 2))))
            hold = self.until_answered(
                shopper,
                "hold",
                "POST",
                "/api/v1/reservations",
                body={"schedule_id": schedule_id, "seat_ids": wanted},
                queue_token=shopper.queue_token,
            )
            if hold.status == 201:
                self.recorder.acknowledged(
                    "hold",
                    hold,
                    reservation_id=hold.body["id"],
                    seat_ids=sorted(wanted),
                    total=hold.body["total_price"],
                )
                return hold.body
            if hold.code != "seats_unavailable":
                self.refused_at_the_gate(shopper, hold)
                return None
        return None

    def refused_at_the_gate(self, shopper: Fan, answer: Answer) -> None:
        """A gated call refused an admitted customer: fine once the session is over, a lost
        session before its end (410), or an admission the queue forgot (403)."""
        if answer.code not in ("queue_token_expired", "queue_not_admitted"):
            return
        if answer.code == "queue_not_admitted":
            shopper.entry = "waiting"
        else:
            shopper.entry = "expired"
        if not self.session_running(shopper):
            return
        evidence = {
            "user_id": shopper.user_id,
            "concert_id": self.sale.concert_id,
            "token": shopper.queue_token,
            "admitted_until": shopper.admitted_until.isoformat(),
            "answer": f"{answer.kind} {answer.status} {answer.code}",
        }
        if answer.code == "queue_token_expired":
            self.recorder.place_lost(how="admitted session refused before its end", **evidence)
        else:
            self.recorder.admission_undone(**evidence)

    def pay(self, shopper: Fan, reservation: dict) -> bool:
        def top_up_when_short(answer: Answer) -> bool:
            if answer.code != "insufficient_balance":
                return False
            return self.charge(shopper, 1_000_000).status == 201

        reservation_id = reservation["id"]
        answer = self.write_once(
            shopper,
            "pay",
            f"/api/v1/reservations/{reservation_id}/payment",
            subject=reservation_id,
            on_answer=top_up_when_short,
        )
        if answer.status != 201:
            return False
        self.recorder.acknowledged(
            "payment",
            answer,
            payment_id=answer.body["id"],
            reservation_id=reservation_id,
            amount=answer.body["amount"],
        )
        shopper.entry = "done"  # the payment frees the queue slot
        return True

    def cancel(self, shopper: Fan, reservation: dict) -> None:
        reservation_id = reservation["id"]
        self.recorder.cancel_requested.add(reservation_id)
        answer = self.until_answered(
            shopper,
            "cancel",
            "DELETE",
            f"/api/v1/reservations/{reservation_id}",
            subject=reservation_id,
        )
        if answer.status == 204:
            self.recorder.acknowledged("cancel", answer, reservation_id=reservation_id)

    def leave_line(self, shopper: Fan) -> None:
        if shopper.entry not in LIVE:
            return
        self.until_answered(
            shopper, "leave", "DELETE", "/api/v1/queue", queue_token=shopper.queue_token
        )
        shopper.entry = "left"


class LineKeeperThread(Behaviour):
    """Some line keepers, each acting when due: enter, poll at the server's pace, and when let
    in, leave and queue again at the back."""

    def __init__(self, number: int, *, keepers: list[Fan], concert_id: int, **common):
        super().__init__(f"line-keepers-{number}", **common)
        self.keepers, self.concert_id = keepers, concert_id
        self.due = {k.user_id: self.rng.uniform(0, 3) for k in keepers}

    def act(self) -> None:
        keeper = min(self.keepers, key=lambda k: self.due[k.user_id])
        self.pause(self.due[keeper.user_id] - self.recorder.now())
        self.due[keeper.user_id] = self.recorder.now() + self.step(keeper)

    def step(self, keeper: Fan) -> float:
        """One action of the keeper; returns the seconds until its next one."""
        if keeper.entry not in LIVE:
            answer = self.call(keeper, "enter", "POST", f"/api/v1/concerts/{self.concert_id}/queue")
            if answer.status in (200, 201):
                # An earlier enter that went unanswered may have made this entry.
                self.retried = keeper.entry == "unanswered"
                self.entered(keeper, answer, concert_id=self.concert_id, was_live=False)
        elif keeper.entry == "admitted":
            answer = self.call(
                keeper, "leave", "DELETE", "/api/v1/queue", queue_token=keeper.queue_token
            )
            if not answer.unavailable:  # left (204), or the entry had ended anyway
                keeper.entry = "left"
                return 0.5
        else:
            answer = self.call(
                keeper, "poll", "GET", "/api/v1/queue", queue_token=keeper.queue_token
            )
        if answer.unavailable:
            if answer.kind == "enter":
                keeper.entry = "unanswered"  # the entry may have been made: 200 next time
            return answer.wait_before_retry()
        if answer.status in (200, 201):
            return self.took_status(keeper, answer)
        if keeper.entry in LIVE:
            self.recorder.place_lost(
                user_id=keeper.user_id,
                concert_id=self.concert_id,
                how=f"{answer.kind} of a {keeper.entry} entry refused: {answer.status} "
                f"{answer.code}",
                token=keeper.queue_token,
            )
        keeper.entry = "refused"
        return 1.0

    def took_status(self, keeper: Fan, answer: Answer) -> float:
        body = answer.body
        before = keeper.entry
        if "token" in body:
            keeper.queue_token = body["token"]
        keeper.entry = body["status"]
        if before in ("waiting", "paused") and keeper.entry in ("done", "expired"):
            self.recorder.place_lost(
                user_id=keeper.user_id,
                concert_id=self.concert_id,
                how=f"a waiting entry, polled at the server's pace, became {keeper.entry}",
                token=keeper.queue_token,
            )
        if keeper.entry == "admitted":
            return 0.1
        return body.get("poll_after_seconds", 3) * self.rng.uniform(0.9, 1.0)


class ChargerThread(Behaviour):
    def __init__(self, number: int, *, shoppers: list[Fan], **common):
        super().__init__(f"charger-{number}", **common)
        self.shoppers = shoppers

    def act(self) -> None:
        shopper = self.rng.choice(self.shoppers)
        self.charge(shopper, self.rng.randrange(10_000, 100_001, 1_000))
        self.pause(self.rng.uniform(*CHARGE_PAUSE_SECONDS))


class Load:
    """Every customer thread of the run: start() once, stop() at the end."""

    def __init__(self, *, url: str, sale: Sale, recorder: Recorder, threads: int, seed: int = 7):
        self.stop_signal = threading.Event()
        common = {"url": url, "recorder": recorder, "stop": self.stop_signal}
        rng = random.Random(seed)
        shoppers = [Fan(c) for c in sale.shoppers]
        keepers = [Fan(c) for c in sale.keepers]
        customers = FanPool(shoppers, rng)
        self.threads: list[Behaviour] = [
            ShopperThread(n, sale=sale, customers=customers, seed=f"{seed}-shopper-{n}", **common)
            for n in range(threads)
        ]
        self.threads += [
            LineKeeperThread(
                n,
                keepers=keepers[n::LINE_KEEPER_THREADS],
                concert_id=sale.line_concert_id,
                seed=f"{seed}-keepers-{n}",
                **common,
            )
            for n in range(LINE_KEEPER_THREADS)
        ]
        self.threads += [
            ChargerThread(n, shoppers=shoppers, seed=f"{seed}-charger-{n}", **common)
            for n in range(CHARGERS)
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def stop(self, timeout: float = 60) -> list[str]:
        """Stop every customer (each finishes the call it is in); returns the errors of those
        that broke (a bug of the load, or an answer it could not read)."""
        self.stop_signal.set()
        for thread in self.threads:
            thread.join(timeout=timeout)
        return [f"{t.name}: {t.error!r}" for t in self.threads if t.error is not None]
