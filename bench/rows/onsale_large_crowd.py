"""The crowd of the on-sale at scale (onsale_large.py, next to this file): tens of thousands of
customers in one asyncio process, each a coroutine that arrives at its time, enters the
concert's queue, polls as the server says, and once admitted reads the seat map, holds 1-4
seats and pays, cancels after paying, or walks away.

    python onsale_large_crowd.py PLAN.json RESULT.json

The standard library only, and its own small HTTP/1.1 client: the customers share a pool of
keep-alive connections (`connections` in the plan), taken in the order asked for, so the
time a request waits for a connection is part of its latency, as the wait in a server's
listen queue would be with a connection per customer. 20,000 sockets would measure nothing
more and cost the two cores more. SIGTERM stops the crowd and writes the result: per call
kind every latency and answer, per customer what they did and every queue answer they got.

Times in the result are seconds from the opening of the sale (`opens_at` in the plan).
"""

from __future__ import annotations

import asyncio
import json
import random
import resource
import signal
import sys
import time
import uuid
from collections import Counter, defaultdict, deque

# A request the server has not answered this long after it was sent fails ("timeout"); the
# wait for a connection before it is not bounded (nginx answers 504 after 30 s itself).
REQUEST_TIMEOUT_S = 60.0
IDLE_CLOSE_S = 10.0  # a pooled connection idle this long is closed (nginx keeps 15 s)
RETRY_AFTER_DEFAULT_S = 1.0  # a 429 or 503 without Retry-After
ATTEMPTS = 5  # a request answered 429, 503 or not at all is sent this often at most
HOLD_CONFLICTS_MAX = 5  # 409 seats_unavailable this often: the customer gives up
RETURNS_WAIT_S = (2.0, 3.0)  # nothing free but seats held by others: look again after this
POLL_SLACK = (1.0, 1.1)  # poll at poll_after_seconds times this (never earlier than told)
# A person's time, uniform in these spans (seconds): picking seats on the map before the first
# hold, picking again after a conflict, entering the payment once the seats are held.
CHOOSE_S = (5.0, 30.0)
CHOOSE_AGAIN_S = (2.0, 8.0)
PAY_S = (10.0, 40.0)


class Pool:
    """Keep-alive HTTP/1.1 connections to one host:port, handed out strictly first come, first
    served: a released connection goes to the longest waiter, never to a request asked for
    later (asyncio.Queue would let a customer's next call, asked for right after the last
    answer, jump the line: seat map, hold and pay would skip the polls' wait)."""

    def __init__(self, host: str, port: int, size: int):
        self.host, self.port = host, port
        self.idle: deque = deque([None] * size)  # None: a slot without an open connection yet
        self.waiters: deque[asyncio.Future] = deque()
        self.opened = 0
        self.stale_retries = 0

    async def _acquire(self):
        if self.idle and not self.waiters:
            return self.idle.popleft()
        waiter = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release(waiter.result())  # handed over as we were cancelled: pass it on
            raise

    def _release(self, slot) -> None:
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(slot)
                return
        self.idle.append(slot)

    async def request(self, method: str, path: str, headers: dict, body: bytes | None):
        """Send one request; returns (status, headers, body, seconds waited for a connection).
        The wait for a connection is not bounded; the server's answer is (REQUEST_TIMEOUT_S)."""
        asked = time.monotonic()
        slot = await self._acquire()
        waited = time.monotonic() - asked
        kept = None
        try:
            status, answer_headers, answer, kept = await asyncio.wait_for(
                self._send(slot, method, path, headers, body), REQUEST_TIMEOUT_S
            )
            return status, answer_headers, answer, waited
        finally:
            self._release(kept)

    async def _send(self, slot, method: str, path: str, headers: dict, body: bytes | None):
        """The request on the slot's connection, or a new one. Returns the answer and the
        connection to keep for the next request (None when it was closed)."""
        for attempt in range(2):
            if slot is not None and time.monotonic() - slot[2] > IDLE_CLOSE_S:
                slot[1].close()
                slot = None
            reused = slot is not None
            if slot is None:
                reader, writer = await asyncio.open_connection(self.host, self.port)
                self.opened += 1
            else:
                reader, writer, _ = slot
            slot = None
            try:
                writer.write(_request_bytes(method, path, headers, body, self.host))
                status, answer_headers, answer = await _read_response(reader)
            except BaseException as error:
                writer.close()
                if not isinstance(error, ConnectionError | asyncio.IncompleteReadError):
                    raise  # cancelled: the answer's time ran out, or the run's
                # The server closed an idle pooled connection as we wrote: nothing reached it,
                # send again once on a new connection.
                if reused and attempt == 0 and not getattr(error, "partial", b""):
                    self.stale_retries += 1
                    continue
                raise
            if answer_headers.get("connection", "").lower() == "close":
                writer.close()
                return status, answer_headers, answer, None
            return status, answer_headers, answer, (reader, writer, time.monotonic())
        raise ConnectionError("no answer")

    def close(self) -> None:
        for slot in self.idle:
            if slot is not None:
                slot[1].close()


def _request_bytes(method: str, path: str, headers: dict, body: bytes | None, host: str) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    elif method in ("POST", "PUT", "PATCH"):
        lines.append("Content-Length: 0")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, dict, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    status = int(status_line.split(" ", 2)[1])
    headers = {}
    for line in header_lines:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    if status in (204, 304) or 100 <= status < 200:
        return status, headers, b""
    if "content-length" in headers:
        return status, headers, await reader.readexactly(int(headers["content-length"]))
    if headers.get("transfer-encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int((await reader.readline()).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")  # (no trailers from our servers)
                return status, headers, b"".join(chunks)
            chunks.append(await reader.readexactly(size))
            await reader.readexactly(2)
    headers["connection"] = "close"
    return status, headers, await reader.read()


class Crowd:
    def __init__(self, plan: dict):
        self.plan = plan
        host, port = plan["base_url"].removeprefix("http://").split(":")
        self.pool = Pool(host, int(port), plan["connections"])
        self.opens_at = plan["opens_at"]  # epoch seconds
        self.concert_id, self.schedule_id = plan["concert_id"], plan["schedule_id"]
        self.latencies: dict[str, list[int]] = defaultdict(list)  # ms, with the slot wait
        self.slot_waits: dict[str, list[int]] = defaultdict(list)  # ms
        self.answers: dict[str, Counter] = defaultdict(Counter)
        self.status_answered_at: list[float] = []  # every answered poll
        self.customers: list[dict] = []
        self.done = 0
        self.all_done = asyncio.Event()

    def now(self) -> float:
        return time.time() - self.opens_at

    # --- HTTP ---------------------------------------------------------------------------------
    async def call(self, kind: str, method: str, path: str, token: str, *, body=None, headers=None):
        """One request of a call kind, sent again (as often as ATTEMPTS) after 429 or 503 at the
        Retry-After the server gave, or after no answer; returns (answer key, status, JSON)."""
        all_headers = {"Authorization": f"Bearer {token}", **(headers or {})}
        raw = None if body is None else json.dumps(body).encode()
        for attempt in range(ATTEMPTS):
            started = time.monotonic()
            try:
                status, answer_headers, answer, waited = await self.pool.request(
                    method, path, all_headers, raw
                )
            except (TimeoutError, OSError, asyncio.IncompleteReadError) as error:
                key = "timeout" if isinstance(error, asyncio.TimeoutError) else "connection error"
                self.answers[kind][key] += 1
                # Reads, leaving and entering (idempotent) are sent again; a hold is not (the
                # money-moving calls have their Idempotency-Key: idempotent() sends those again).
                if attempt < ATTEMPTS - 1 and (method != "POST" or kind == "enter"):
                    await asyncio.sleep(RETRY_AFTER_DEFAULT_S)
                    continue
                return key, 0, {}
            self.latencies[kind].append(round((time.monotonic() - started) * 1000))
            self.slot_waits[kind].append(round(waited * 1000))
            try:
                data = json.loads(answer) if answer else {}
            except ValueError:
                data = {}
            key = str(status)
            if status >= 400 and isinstance(data, dict) and isinstance(data.get("error"), dict):
                key = f"{status} {data['error'].get('code')}"
            self.answers[kind][key] += 1
            if kind == "status":
                self.status_answered_at.append(round(self.now(), 3))
            if status in (429, 503) and attempt < ATTEMPTS - 1:
                await asyncio.sleep(_retry_after(answer_headers))
                continue
            return key, status, data
        raise AssertionError("unreachable: the last attempt returns")

    # --- a customer ---------------------------------------------------------------------------
    async def customer(self, spec: list) -> None:
        user_id, token, arrives, plan, wanted = spec
        rng = random.Random(f"{self.plan['seed']}-{user_id}")
        record = {"user": user_id, "plan": plan, "wanted": wanted, "arrived": None}
        self.customers.append(record)
        try:
            await asyncio.sleep(max(0.0, arrives - self.now()))
            record["outcome"] = await self.journey(record, token, rng)
        except asyncio.CancelledError:
            record["outcome"] = "not done at the end"
            raise
        except Exception as error:  # a bug in the crowd: counted, never the run's end
            record["outcome"] = f"crowd error: {error!r}"[:120]
        finally:
            self.done += 1
            if self.done == len(self.plan["customers"]):
                self.all_done.set()

    async def journey(self, record: dict, token: str, rng: random.Random) -> str:
        record["arrived"] = round(self.now(), 3)
        key, status, entry = await self.call(
            "enter", "POST", f"/api/v1/concerts/{self.concert_id}/queue", token
        )
        if status not in (200, 201):
            return f"error: enter {key}"
        record["entered"] = round(self.now(), 3)
        # The server's arrival order: the order key signed into the token
        # (<concert>.<customer>.<nonce>.<order>.<mac>, the customer absent in tokens of the
        # earlier format), 2^41 + microseconds after opening, random below.
        record["order"] = int(entry["token"].split(".")[-2])
        record["entry"] = [entry.get("position"), entry.get("eta_seconds")]
        record["polls"] = polls = []  # [time answered, eta_seconds, position, status]
        queue = {"X-Queue-Token": entry["token"]}
        answer = entry
        while answer.get("status") in ("waiting", "paused"):
            pause = float(answer.get("poll_after_seconds") or 1)
            await asyncio.sleep(pause * rng.uniform(*POLL_SLACK))
            key, status, answer = await self.call(
                "status", "GET", "/api/v1/queue", token, headers=queue
            )
            if status != 200:
                return f"error: poll {key}"
            polls.append(
                [
                    round(self.now(), 3),
                    answer.get("eta_seconds"),
                    answer.get("position"),
                    answer["status"][0],
                ]
            )
        if answer.get("status") != "admitted":
            return f"error: queue entry {answer.get('status')} ({answer.get('ended_reason')}) while waiting"
        record["admitted_seen"] = round(self.now(), 3)
        if record["plan"] == "no-show":
            return "no-show after admission"
        return await self.shop(record, token, queue, rng)

    async def shop(self, record: dict, token: str, queue: dict, rng: random.Random) -> str:
        conflicts = 0
        waited_for_returns = False
        while True:
            key, status, seat_map = await self.call(
                "seat map",
                "GET",
                f"/api/v1/schedules/{self.schedule_id}/seats",
                token,
                headers=queue,
            )
            if status in (403, 410):
                return f"admitted session over ({key})"
            if status != 200:
                return f"error: seat map {key}"
            seats = seat_map["seats"]
            free = [seat for seat in seats if seat["status"] == "available"]
            if not free:
                if any(seat["status"] == "held" for seat in seats):
                    waited_for_returns = True  # held seats come back on expiry: look again
                    await asyncio.sleep(rng.uniform(*RETURNS_WAIT_S))
                    continue
                await self.call("leave", "DELETE", "/api/v1/queue", token, headers=queue)
                return "sold out"
            await asyncio.sleep(rng.uniform(*(CHOOSE_AGAIN_S if conflicts else CHOOSE_S)))
            key, status, reservation = await self.call(
                "hold",
                "POST",
                "/api/v1/reservations",
                token,
                body={
                    "schedule_id": self.schedule_id,
                    "seat_ids": pick(free, record["wanted"], rng),
                },
                headers=queue,
            )
            if status == 201:
                break
            if status in (403, 410):
                return f"admitted session over ({key})"
            if key != "409 seats_unavailable":
                return f"error: hold {key}"
            conflicts += 1
            record["conflicts"] = conflicts
            if conflicts >= HOLD_CONFLICTS_MAX:
                await self.call("leave", "DELETE", "/api/v1/queue", token, headers=queue)
                return "gave up after conflicts"
        record["held"] = round(self.now(), 3)
        # Whoever waited for returned seats pays: a walk-away among them would hold seats for
        # another full hold time, and chains of those would outlast the run.
        if record["plan"] == "walk away" and not waited_for_returns:
            return "walked away"
        path = f"/api/v1/reservations/{reservation['id']}"
        await asyncio.sleep(rng.uniform(*PAY_S))
        key, status, _ = await self.idempotent("pay", f"{path}/payment", token)
        if status != 201:
            return (
                "hold expired before paying" if key == "410 hold_expired" else f"error: pay {key}"
            )
        record["paid"] = round(self.now(), 3)
        if record["plan"] != "cancel":
            return "paid"
        key, status, _ = await self.idempotent("cancel", f"{path}/cancellation", token)
        return "paid, then cancelled" if status == 201 else f"error: cancel {key}"

    async def idempotent(self, kind: str, path: str, token: str):
        """A money-moving POST, sent again with its Idempotency-Key after a 5xx, no answer or
        409 idempotency_in_progress, as a careful client does."""
        headers = {"Idempotency-Key": str(uuid.uuid4())}
        for attempt in range(ATTEMPTS):
            key, status, data = await self.call(kind, "POST", path, token, headers=headers)
            again = status == 0 or status >= 500 or key == "409 idempotency_in_progress"
            if not again or attempt == ATTEMPTS - 1:
                return key, status, data
            await asyncio.sleep(1)
        return key, status, data

    # --- the run ------------------------------------------------------------------------------
    async def run(self) -> str:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        tasks = [asyncio.create_task(self.customer(spec)) for spec in self.plan["customers"]]
        waiters = [asyncio.create_task(stop.wait()), asyncio.create_task(self.all_done.wait())]
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        ended_by = "every customer done" if self.all_done.is_set() else "stopped"
        pending = {*tasks, *waiters}
        while pending:
            # Again every 2 s: Python 3.11's asyncio.wait_for can swallow a cancellation that
            # arrives as its call completes, and such a customer would poll on for ever.
            for task in pending:
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=2)
        self.pool.close()
        return ended_by


def pick(free: list[dict], wanted: int, rng: random.Random) -> list[int]:
    """As many adjacent-ish seats as wanted (or as are left), the better ones more often: the
    free seats best grade first, in seat order, and a window starting at a point biased
    towards the front (the square of a uniform draw)."""
    free.sort(key=lambda seat: (-seat["price"], seat["section"], seat["row"], seat["number"]))
    count = min(wanted, len(free))
    start = int((len(free) - count + 1) * rng.random() ** 2)
    return [seat["id"] for seat in free[start : start + count]]


def _retry_after(headers: dict) -> float:
    try:
        return max(0.0, float(headers.get("retry-after", RETRY_AFTER_DEFAULT_S)))
    except ValueError:
        return RETRY_AFTER_DEFAULT_S


def main(plan_path: str, result_path: str) -> None:
    with open(plan_path) as f:
        plan = json.load(f)
    crowd = Crowd(plan)
    started = time.time()
    ended_by = asyncio.run(crowd.run())
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result = {
        "ended_by": ended_by,
        "started_s": round(started - plan["opens_at"], 3),
        "stopped_s": round(crowd.now(), 3),
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
        "connections_opened": crowd.pool.opened,
        "stale_connection_retries": crowd.pool.stale_retries,
        "latencies_ms": crowd.latencies,
        "slot_waits_ms": crowd.slot_waits,
        "answers": {kind: dict(counts) for kind, counts in crowd.answers.items()},
        "status_answered_at": crowd.status_answered_at,
        "customers": crowd.customers,
    }
    with open(result_path, "w") as f:
        json.dump(result, f, separators=(",", ":"))


if __name__ == "__main__":
    main(*sys.argv[1:3])
