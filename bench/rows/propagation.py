"""Row: does a change reach every web process, on every node? Each gunicorn worker keeps a
concert's queue settings for LOCAL_CACHE_SECONDS (config/localcache.py), and seat maps are
cached in Redis, shared by all. With several web nodes (`--web-nodes`) a stale process would
let customers shop in a paused sale, or show a sold seat as free.

The probe, with the system running:
- pause: an operator pauses a concert (queueing.services.queue_set_paused, as the admin
  action does) while a waiting customer polls every node directly (not through the proxy,
  so every node is asked), ~30 times a second in turn; the last answer still saying "waiting"
  must come within LOCAL_CACHE_SECONDS (+ PAUSE_SLACK_SECONDS for the request itself) of the
  pause. Then the same for the resume.
- seat map: an admitted customer holds a seat through the first node; the first seat-map read
  on every other node right after must show it held (the map is cached in Redis, never per
  process).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta

from bench.harness import log
from bench.harness.checks import check
from bench.harness.data import admit, create_concert, enter_queue, queue_token, seat_blocks
from bench.harness.processes import System

ROWS = ("propagation",)
PAUSE_SLACK_SECONDS = 0.5  # a poll sent just before the change answers just after it
POLL_GAP_SECONDS = 0.03
EMAIL_PREFIX = "propagation-"


def prepare(selected: set[str]) -> dict | None:
    """Two concerts: one whose sale opens in an hour, with a customer waiting in its line
    (nobody is admitted before opening, so the answer is "waiting" until paused), and one on
    sale with a customer admitted and ten seats."""
    if "propagation" not in selected:
        return None
    from concerts.models import Concert
    from concerts.services import seat_map_generate

    (waiting_id, waiting_key), (shopper_id, shopper_key) = _customers(2)
    later = create_concert("Propagation probe: sale opens later")
    Concert.objects.filter(id=later.id).update(sale_opens_at=datetime.now(UTC) + timedelta(hours=1))
    orders = enter_queue(later.id, [waiting_id])
    on_sale = create_concert("Propagation probe: on sale", queue_max_active=10)
    schedule = on_sale.schedules.get()
    seat_map_generate(schedule_ids=[schedule.id], blocks=seat_blocks(10, price=50_000))
    tokens = admit(on_sale, [shopper_id])
    return {
        "paused_concert_id": later.id,
        "waiting": {
            "bearer": waiting_key,
            "queue": queue_token(later.id, waiting_id, orders.get(waiting_id)),
        },
        "schedule_id": schedule.id,
        "seat_id": schedule.seats.order_by("id").values_list("id", flat=True).first(),
        "shopper": {"bearer": shopper_key, "queue": tokens[shopper_id]},
    }


def run(ctx: dict, system: System) -> dict:
    from django.conf import settings

    nodes = [node.url for node in system.nodes]
    bound = settings.LOCAL_CACHE_SECONDS + PAUSE_SLACK_SECONDS
    workers = system.gunicorn.workers
    # Every worker of every node reads the concert once, so each has it cached as "not paused"
    for url in nodes:
        for _ in range(4 * workers):
            _queue_state(url, ctx["waiting"])
    pause = _flip(ctx, nodes, paused=True, bound=bound)
    resume = _flip(ctx, nodes, paused=False, bound=bound)
    seat_map = _seat_map_after_hold(ctx, nodes)
    result = {
        "row": "propagation",
        "nodes": len(nodes),
        "workers_per_node": workers,
        "local_cache_seconds": settings.LOCAL_CACHE_SECONDS,
        "pause": pause,
        "resume": resume,
        "seat_map": seat_map,
    }
    result["checks"] = [
        check(
            "last 'waiting' answer after the pause, seconds",
            pause["last_stale_s"],
            f"<= {bound}",
            ok=pause["last_stale_s"] <= bound,
        ),
        check(
            "last 'paused' answer after the resume, seconds",
            resume["last_stale_s"],
            f"<= {bound}",
            ok=resume["last_stale_s"] <= bound,
        ),
        check("answers that were not 200", pause["errors"] + resume["errors"], 0),
        check(
            "nodes whose first seat map after a hold showed the seat free",
            seat_map["stale_nodes"],
            0,
        ),
    ]
    log(
        f"propagation over {len(nodes)} node(s) x {workers} workers: pause seen everywhere "
        f"after {pause['last_stale_s']} s, resume after {resume['last_stale_s']} s "
        f"(bound {bound} s); seat map stale on {seat_map['stale_nodes']} node(s)"
    )
    return result


def _flip(ctx: dict, nodes: list[str], *, paused: bool, bound: float) -> dict:
    """Pause (or resume) the concert, then poll every node in turn for bound + 1 s."""
    from queueing.services import queue_set_paused

    expected = "paused" if paused else "waiting"
    queue_set_paused(concert_ids=[ctx["paused_concert_id"]], paused=paused)
    changed = time.monotonic()
    answers, errors, last_stale = 0, 0, 0.0
    stale_by_node = dict.fromkeys(nodes, 0.0)
    while (elapsed := time.monotonic() - changed) < bound + 1:
        for url in nodes:
            state = _queue_state(url, ctx["waiting"])
            answered = time.monotonic() - changed
            answers += 1
            if state is None:
                errors += 1
            elif state != expected:
                # The poll was sent before `answered`: count the whole request as stale.
                last_stale = max(last_stale, answered)
                stale_by_node[url] = max(stale_by_node[url], answered)
        time.sleep(POLL_GAP_SECONDS)
    return {
        "answers": answers,
        "errors": errors,
        "last_stale_s": round(last_stale, 3),
        "last_stale_by_node_s": [round(stale_by_node[url], 3) for url in nodes],
        "polled_for_s": round(elapsed, 1),
    }


def _seat_map_after_hold(ctx: dict, nodes: list[str]) -> dict:
    shopper = ctx["shopper"]
    body = json.dumps({"schedule_id": ctx["schedule_id"], "seat_ids": [ctx["seat_id"]]})
    for url in nodes:  # every node has built the map once: a stale copy would be there
        _request(url, f"/api/v1/schedules/{ctx['schedule_id']}/seats", shopper)
    status, _ = _request(nodes[0], "/api/v1/reservations", shopper, body=body.encode())
    seen = []
    for url in nodes[1:] or nodes:
        _, answer = _request(url, f"/api/v1/schedules/{ctx['schedule_id']}/seats", shopper)
        seat = next((s for s in (answer or {}).get("seats", []) if s["id"] == ctx["seat_id"]), {})
        seen.append(seat.get("status"))
    return {
        "hold_status": status,
        "seen_by_other_nodes": seen,
        "stale_nodes": sum(state != "held" for state in seen) if status == 201 else len(seen),
    }


def _queue_state(url: str, customer: dict) -> str | None:
    status, answer = _request(url, "/api/v1/queue", customer)
    return answer.get("status") if status == 200 and answer else None


def _request(
    url: str, path: str, customer: dict, *, body: bytes | None = None
) -> tuple[int, dict | None]:
    request = urllib.request.Request(
        url + path,
        data=body,
        method="POST" if body is not None else "GET",
        headers={
            "Authorization": f"Bearer {customer['bearer']}",
            "X-Queue-Token": customer["queue"],
            "Content-Type": "application/json",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, None
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0, None


def _customers(n: int) -> list[tuple[int, str]]:
    import secrets

    from rest_framework.authtoken.models import Token

    from accounts.models import User

    users = [User.objects.create(email=f"{EMAIL_PREFIX}{i}@example.com") for i in range(n)]
    tokens = [Token.objects.create(key=secrets.token_hex(20), user=user) for user in users]
    return [(token.user_id, token.key) for token in tokens]
