"""Rows: the ceiling, and the waiting room's two hot paths.

ceiling            GET  /api/v1/_bench/noop            the same middleware and token
                                                        authentication as the API, no work
queue enter        POST /api/v1/concerts/{id}/queue     a new customer per request (201)
queue status 10k   GET  /api/v1/queue + X-Queue-Token   1,000 customers at the back of a
queue status 1M                                         line of 10,000 / 1,000,000
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path

from bench.harness import log
from bench.harness.data import create_concert, enter_queue, queue_token
from bench.harness.measure import ReadRow
from bench.harness.wrk import write_customers

ROWS = ("ceiling", "queue enter", "queue status 10k", "queue status 1M")
# Enter needs a customer never seen per request: ~1,700 req/s x 10 s, and a margin. Wrapping
# round the file would send repeat entries (200, not 201), which wrk/cycle.lua counts.
ENTER_CUSTOMERS = 20_000
ENTER_WARM_UP_CUSTOMERS = 2_000
READERS = 1_000  # customers cycling through a read row (pollers, seat map viewers)
LINE_LENGTHS = {"10k": 10_000, "1M": 1_000_000}  # row "queue status <label>"
FILLER_USER_ID = 1_000_000_000  # ids of the entries ahead of the pollers (Redis only, no user)


def customers_needed(selected: set[str]) -> int:
    if "queue enter" in selected:
        return ENTER_CUSTOMERS
    return READERS if selected & set(ROWS) else 0


def prepare(
    selected: set[str], customers: list, *, rounds: int, scratch: Path, preparation: dict
) -> list[ReadRow]:
    rows = []
    readers = customers[:READERS]
    if "ceiling" in selected:
        noop = write_customers(
            scratch / "noop.tsv", "GET", "/api/v1/_bench/noop", [(b,) for _, b in readers]
        )
        rows.append(ReadRow("ceiling", [noop]))
    if "queue enter" in selected:
        rows.append(_enter_row(customers, rounds, scratch))
    started = time.monotonic()
    for label, length in LINE_LENGTHS.items():
        if f"queue status {label}" in selected:
            rows.append(_status_row(label, length, readers, scratch))
    if any(row.name.startswith("queue status") for row in rows):
        preparation["queue_lines_s"] = round(time.monotonic() - started, 1)
        log(f"queue lines filled in {preparation['queue_lines_s']} s")
    return rows


def _enter_row(customers: list, rounds: int, scratch: Path) -> ReadRow:
    """Every entry must be new (201): a concert of its own for each round, and one to warm up."""
    concerts = [create_concert(f"Enter, round {i + 1}") for i in range(rounds)]
    warm_up_concert = create_concert("Enter, warm-up")

    def entries(concert, name: str, entering: list) -> Path:
        path = f"/api/v1/concerts/{concert.id}/queue"
        return write_customers(scratch / name, "POST", path, [(b,) for _, b in entering])

    return ReadRow(
        "queue enter",
        customers=[entries(c, f"enter-{i + 1}.tsv", customers) for i, c in enumerate(concerts)],
        warm_up=entries(warm_up_concert, "enter-warm.tsv", customers[-ENTER_WARM_UP_CUSTOMERS:]),
        extra=lambda i: {"entered": waiting_count(concerts[i].id)},
    )


def _status_row(label: str, length: int, pollers: list, scratch: Path) -> ReadRow:
    """Pollers at the back of a line of `length`. Nobody leaves the line during the run: one
    admission slot (taken by the first filler) and an abandonment time longer than the run."""
    name = f"queue status {label}"
    concert = create_concert(
        f"Status, {length} waiting", queue_max_active=1, queue_abandon_after_seconds=3600
    )
    fillers = range(FILLER_USER_ID, FILLER_USER_ID + length - len(pollers))
    orders = enter_queue(concert.id, [*fillers, *(uid for uid, _ in pollers)])
    if waiting_count(concert.id) != length:
        raise RuntimeError(f"{name}: {waiting_count(concert.id)} waiting, not {length}")
    polls = [(bearer, queue_token(concert.id, uid, orders.get(uid))) for uid, bearer in pollers]
    customers = write_customers(scratch / f"status-{label}.tsv", "GET", "/api/v1/queue", polls)

    def last_poller_at_the_back(base_url: str) -> None:
        # A few of the line may have been admitted or left: the position is about `length`.
        bearer, token = polls[-1]
        code, body = _get_json(
            base_url + "/api/v1/queue",
            {"Authorization": f"Bearer {bearer}", "X-Queue-Token": token},
        )
        if code != 200 or not length - 10 <= (body.get("position") or 0) <= length:
            raise RuntimeError(f"{name}: last poller: {code} {body} (expected position ~{length})")

    return ReadRow(name, [customers], before=last_poller_at_the_back)


def waiting_count(concert_id: int) -> int:
    from queueing.redis_queue import queue_keys, queue_redis

    return queue_redis().zcard(queue_keys(concert_id)[0])


def _get_json(url: str, headers: dict) -> tuple[int, dict]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")
