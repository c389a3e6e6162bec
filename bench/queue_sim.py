"""The waiting room in virtual time: the real queue scripts on the real Redis, no HTTP.

    python -m bench.queue_sim                      # both scenarios, 20,000 customers each
    python -m bench.queue_sim --customers 2000 --scenario capacity --seed 7
    python -m bench.queue_sim --json bench/results/queue_sim.json

A design tool for the queue's ETA and poll intervals (docs/queue.md, "ETA" and "Polling"),
deterministic for a seed: every script call gets a virtual `now` (the scripts take the time as
an argument), the admission tick is the same TICK script with the same arguments the Celery
beat task sends (queueing.services._tick), and the customers' entries and polls are the ENTER
and STATUS scripts with the arguments the API sends (queueing.selectors.settings_args). Only
the order keys of post-opening arrivals come from Redis's own clock, as in production; the
simulation sends arrivals in their virtual order, so that order is theirs.

The crowd: `customers` in all; 10 % arrive in the 5 minutes before opening, half in the
first 10 s after it, the rest over the next 10 minutes. Everyone polls when told (plus up to
0.2 s). Once admitted: 10 % never come back to claim it (the slot goes back after the claim
window), 10 % look and leave after 20-120 s, 80 % pay after 1-4 minutes (or run out of
session). Recorded: every ETA shown (on entry and at each poll after opening) against when
that customer was really admitted, polls per second against the stated bound, admission
order against arrival order, how late customers saw their admission, and that max_active
was never exceeded.

Needs Redis (the REDIS_URL of the settings); touches only the keys of a concert id no real
concert has, and deletes them before and after.
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
import os
import random
import statistics
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path


def _django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


@dataclass(frozen=True)
class Scenario:
    name: str
    customers: int = 20_000
    max_active: int = 1_000
    admit_per_minute: int = 1_200
    admitted_minutes: int = 3
    claim_seconds: int = 30
    abandon_after_seconds: int = 300
    seed: int = 1
    pre_opening_share: float = 0.1
    burst_share: float = 0.5  # of all customers, in the first 10 s after opening
    never_claim_share: float = 0.1
    leave_share: float = 0.1
    shopping_seconds: int | None = None  # the operator's usual shopping time (the ETA's prior)


# Capacity-bound: 1,000 slots and sessions of ~2 minutes free ~8 a second, against 20 a
# second allowed. Rate-bound: enough slots that the configured 20 a second is the limit.
SCENARIOS = {
    "capacity": Scenario("capacity"),
    "rate": Scenario("rate", max_active=6_000),
}

OPENS = datetime(2030, 1, 5, 11, 0, tzinfo=UTC)  # any fixed moment: the run is virtual
MIN_ACTUAL_S = 10  # relative errors only where the real wait was at least this long
OPENING_MINUTE_MS = 60_000


@dataclass
class Customer:
    user: int
    arrival_ms: int  # virtual, relative to opening
    outcome: str  # pay | leave | never_claim
    nonce: str = ""
    admitted_ms: int | None = None
    seen_ms: int | None = None  # the poll that showed `admitted`
    ended: str | None = None


@dataclass
class Result:
    scenario: Scenario
    samples: list[tuple[int, float, int, str]] = field(
        default_factory=list
    )  # t, eta s, user, phase
    polls_per_second: dict[int, int] = field(default_factory=dict)
    bound_per_second: dict[int, float] = field(default_factory=dict)
    admitted_order: list[int] = field(default_factory=list)
    max_active_seen: int = 0
    unclaimed: int = 0
    customers: dict[int, Customer] = field(default_factory=dict)
    end_ms: int = 0


def poll_bound(*, admit_per_minute: int, waiting: int, max_active: int, cap_s: int) -> float:
    """The total poll rate of a line told to poll as scripts.poll_interval says (docs/queue.md,
    "Polling"): at most (C / k) (1 + ln(cap / min)) + N / cap' + A / 30 a second, for the
    configured pace C a second, k = POLL_SHARE_OF_ETA, N waiting, A = max_active admitted,
    cap' = the harmonic mean of the capped intervals (the cap less 0 to half of it, in whole
    seconds: 43.2 s for 60 s; a rate is the mean of 1 / interval, not 1 / the mean)."""
    from queueing import scripts

    pace = admit_per_minute / 60
    share, least = scripts.POLL_SHARE_OF_ETA, scripts.POLL_MIN_MS / 1000
    front = pace / share * (1 + math.log(max(1.0, cap_s / least)))
    spread = cap_s // 2 + 1  # scripts.poll_interval: cap - (0 .. spread - 1) s
    per_customer = sum(1 / max(least, cap_s - j) for j in range(spread)) / spread
    return front + waiting * per_customer + max_active * 1000 / scripts.ADMITTED_POLL_MS


def simulate(scenario: Scenario, *, concert_id: int | None = None) -> Result:
    """Run one scenario to the end (everyone admitted or gone); deterministic for its seed."""
    _django()
    from concerts.models import Concert
    from queueing import scripts
    from queueing.models import QueueState
    from queueing.redis_queue import queue_keys, queue_pipeline, queue_redis, run_script, to_ms
    from queueing.selectors import poll_cap_seconds, settings_args, status_from_reply
    from queueing.services import _tick

    rng = random.Random(scenario.seed)
    concert = Concert(
        id=concert_id or 2_000_000_000 + os.getpid() % 100_000,
        title="queue simulation",
        is_published=True,
        sale_opens_at=OPENS,
        queue_max_active=scenario.max_active,
        queue_admit_per_minute=scenario.admit_per_minute,
        queue_admitted_minutes=scenario.admitted_minutes,
        queue_abandon_after_seconds=scenario.abandon_after_seconds,
        queue_claim_seconds=scenario.claim_seconds,
        queue_shopping_seconds=scenario.shopping_seconds,
        cancellation_policy_id=0,  # never saved: no default policy looked up
    )
    client = queue_redis()
    keys = queue_keys(concert.id)
    client.delete(*keys)
    opens_ms = to_ms(OPENS)
    settings = settings_args(concert)
    cap_s = poll_cap_seconds(concert)

    def moment(ms: int) -> datetime:
        return datetime.fromtimestamp((opens_ms + ms) / 1000, tz=UTC)

    # The crowd.
    customers: dict[int, Customer] = {}
    n = scenario.customers
    n_pre = int(n * scenario.pre_opening_share)
    n_burst = int(n * scenario.burst_share)
    for user in range(1, n + 1):
        if user <= n_pre:
            arrival = -rng.randrange(1, 300_000)
        elif user <= n_pre + n_burst:
            arrival = rng.randrange(0, 10_000)
        else:
            arrival = rng.randrange(10_000, 610_000)
        draw = rng.random()
        outcome = (
            "never_claim"
            if draw < scenario.never_claim_share
            else "leave"
            if draw < scenario.never_claim_share + scenario.leave_share
            else "pay"
        )
        customers[user] = Customer(user=user, arrival_ms=arrival, outcome=outcome)

    events: list[tuple[int, int, str, int]] = []
    sequence = 0

    def schedule(at_ms: int, kind: str, user: int) -> None:
        nonlocal sequence
        sequence += 1
        heapq.heappush(events, (at_ms, sequence, kind, user))

    for customer in customers.values():
        schedule(customer.arrival_ms, "arrive", customer.user)

    result = Result(scenario=scenario, customers=customers)
    free_slots = scenario.max_active
    second = min(c.arrival_ms for c in customers.values()) // 1000
    waiting = 0
    try:
        while events:
            start_ms = second * 1000
            # The beat tick, at the start of every second after opening (before it the task
            # skips the concert: it is not on sale yet).
            if start_ms >= 0:
                reply = _tick(concert, moment(start_ms))
                if reply[0] == b"new":  # services._queue_go_live, with nothing to restore
                    run_script("GO_LIVE", concert.id, [opens_ms + start_ms, 0])
                    reply = _tick(concert, moment(start_ms))
                admitted, active, waiting, _rate, unclaimed_count, *rest = reply
                result.unclaimed += unclaimed_count
                for user in rest[:unclaimed_count]:
                    customers[int(user)].ended = "unclaimed"
                for user in rest[unclaimed_count::2]:
                    customers[int(user)].admitted_ms = start_ms
                    result.admitted_order.append(int(user))
                result.max_active_seen = max(result.max_active_seen, int(active))
                free_slots = scenario.max_active - int(active)
            # Every call of this second, in time order, one pipelined round trip.
            batch = []
            while events and events[0][0] < start_ms + 1000:
                batch.append(heapq.heappop(events))
            pipe = queue_pipeline()
            sent = []
            for at_ms, _, kind, user in batch:
                customer = customers[user]
                now_ms = opens_ms + at_ms
                if kind == "arrive":
                    customer.nonce = f"{rng.getrandbits(64):016x}"
                    args = [user, customer.nonce, now_ms, int(at_ms < 0)]
                    args += [rng.randrange(scripts.POST_OPENING_BASE), *settings]
                    run_script("ENTER", concert.id, args, client=pipe)
                elif kind == "poll":
                    if customer.admitted_ms is not None and customer.outcome == "never_claim":
                        continue  # gone: never comes back to see the admission
                    args = [user, customer.nonce, now_ms, "poll", *settings]
                    run_script("STATUS", concert.id, args, client=pipe)
                    result.polls_per_second[second] = result.polls_per_second.get(second, 0) + 1
                else:  # end of shopping: paid (frees the admitted slot) or left
                    nonce = "" if kind == "pay" else customer.nonce
                    reason = "done" if kind == "pay" else "left"
                    run_script("END", concert.id, [user, nonce, reason, now_ms], client=pipe)
                sent.append((at_ms, kind, user))
            replies = pipe.execute() if sent else []
            if start_ms >= 0:
                result.bound_per_second[second] = poll_bound(
                    admit_per_minute=scenario.admit_per_minute,
                    waiting=int(waiting),
                    max_active=scenario.max_active,
                    cap_s=cap_s,
                )
            phase = (
                "opening minute"
                if 0 <= start_ms < OPENING_MINUTE_MS
                else "capacity-bound"
                if free_slots <= 0
                else "rate-bound"
            )
            for (at_ms, kind, user), reply in zip(sent, replies, strict=True):
                customer = customers[user]
                if kind in ("pay", "leave"):
                    customer.ended = customer.ended or kind
                    continue
                status_reply = reply[3:] if kind == "arrive" else reply
                status = status_from_reply(status_reply, concert=concert, now=moment(at_ms))
                if status.state in (QueueState.WAITING, QueueState.PAUSED):
                    if status.eta_seconds is not None and at_ms >= 0:
                        result.samples.append((at_ms, status.eta_seconds, user, phase))
                    told = status.poll_after_seconds * 1000
                    schedule(at_ms + told + rng.randrange(0, 200), "poll", user)
                elif status.state == QueueState.ADMITTED:
                    customer.seen_ms = at_ms
                    if customer.outcome == "pay":
                        schedule(at_ms + rng.randrange(60_000, 240_000), "pay", user)
                    elif customer.outcome == "leave":
                        schedule(at_ms + rng.randrange(20_000, 120_000), "leave", user)
                else:
                    customer.ended = customer.ended or status.ended_because or status.state
            second += 1
        result.end_ms = second * 1000
    finally:
        client.delete(*keys)
    return result


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def eta_errors(result: Result) -> dict:
    """Relative error of each ETA shown, (shown - real) / real, where the real wait was at
    least MIN_ACTUAL_S: p50 and p90 of its size, the signed median; overall and by phase."""
    by_phase: dict[str, list[float]] = {}
    for at_ms, eta, user, phase in result.samples:
        admitted = result.customers[user].admitted_ms
        if admitted is None:
            continue
        actual = (admitted - at_ms) / 1000
        if actual < MIN_ACTUAL_S:
            continue
        by_phase.setdefault(phase, []).append((eta - actual) / actual)

    def summary(errors: list[float]) -> dict:
        if not errors:
            return {"samples": 0}
        sizes = [abs(e) for e in errors]
        return {
            "samples": len(errors),
            "p50": round(_quantile(sizes, 0.5), 3),
            "p90": round(_quantile(sizes, 0.9), 3),
            "signed_p50": round(statistics.median(errors), 3),
            "optimistic_share": round(sum(e < 0 for e in errors) / len(errors), 3),
        }

    everything = [e for errors in by_phase.values() for e in errors]
    return {
        **summary(everything),
        "by_phase": {phase: summary(errors) for phase, errors in sorted(by_phase.items())},
    }


def report(result: Result) -> dict:
    s = result.scenario
    customers = result.customers.values()
    post = sorted(
        (c for c in customers if c.arrival_ms >= 0 and c.admitted_ms is not None),
        key=lambda c: (c.arrival_ms, c.user),
    )
    rank = {user: i for i, user in enumerate(result.admitted_order)}
    arrival_ranks = [rank[c.user] for c in post]
    inversions = sum(1 for a, b in zip(arrival_ranks, arrival_ranks[1:], strict=False) if b < a)
    seen_late = [
        (c.seen_ms - c.admitted_ms) / 1000
        for c in customers
        if c.seen_ms is not None and c.admitted_ms is not None
    ]
    peak_second = max(result.polls_per_second, key=result.polls_per_second.get, default=0)
    over = [
        second
        for second, polls in result.polls_per_second.items()
        if second in result.bound_per_second and polls > result.bound_per_second[second]
    ]
    return {
        "scenario": s.name,
        "customers": s.customers,
        "max_active": s.max_active,
        "admit_per_minute": s.admit_per_minute,
        "admitted_minutes": s.admitted_minutes,
        "claim_seconds": s.claim_seconds,
        "seed": s.seed,
        "virtual_seconds": result.end_ms // 1000,
        "admitted": len(result.admitted_order),
        "unclaimed_returned": result.unclaimed,
        "max_active_seen": result.max_active_seen,
        "max_active_never_exceeded": result.max_active_seen <= s.max_active,
        "admission_order_exact": inversions == 0,
        "post_opening_inversions": inversions,
        "seen_late_s": {
            "p50": round(_quantile(seen_late, 0.5), 2) if seen_late else None,
            "p99": round(_quantile(seen_late, 0.99), 2) if seen_late else None,
            "max": round(max(seen_late), 2) if seen_late else None,
        },
        "polls_total": sum(result.polls_per_second.values()),
        "polls_per_s_max": result.polls_per_second.get(peak_second, 0),
        "poll_bound_at_peak": round(result.bound_per_second.get(peak_second, 0), 1),
        "seconds_over_bound": len(over),
        "eta_error": eta_errors(result),
    }


def markdown(reports: list[dict]) -> str:
    lines = []
    for r in reports:
        e = r["eta_error"]
        lines += [
            f"### {r['scenario']}: {r['customers']:,} customers, {r['max_active']:,} slots, "
            f"{r['admit_per_minute']:,}/min, {r['admitted_minutes']} min sessions, seed {r['seed']}",
            "",
            f"- {r['admitted']:,} admitted over {r['virtual_seconds']:,} virtual s; "
            f"{r['unclaimed_returned']:,} unclaimed slots went back; most shopping at once "
            f"{r['max_active_seen']:,} (never above {r['max_active']:,}: "
            f"{r['max_active_never_exceeded']})",
            f"- admission order = arrival order after opening: {r['admission_order_exact']} "
            f"({r['post_opening_inversions']} inversions)",
            f"- admission seen after (s): p50 {r['seen_late_s']['p50']}, p99 "
            f"{r['seen_late_s']['p99']}, max {r['seen_late_s']['max']}",
            f"- polls: {r['polls_total']:,} in all; peak {r['polls_per_s_max']:,}/s against a "
            f"bound of {r['poll_bound_at_peak']:,}/s then; seconds over the bound: "
            f"{r['seconds_over_bound']}",
            "",
            "| phase | samples | p50 | p90 | signed median | optimistic |",
            "|---|---|---|---|---|---|",
            f"| all | {e.get('samples', 0):,} | {e.get('p50')} | {e.get('p90')} | "
            f"{e.get('signed_p50')} | {e.get('optimistic_share')} |",
        ]
        for phase, p in e["by_phase"].items():
            lines.append(
                f"| {phase} | {p.get('samples', 0):,} | {p.get('p50')} | {p.get('p90')} | "
                f"{p.get('signed_p50')} | {p.get('optimistic_share')} |"
            )
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), action="append")
    parser.add_argument("--customers", type=int)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--admitted-minutes", type=int, help="the admitted session's length")
    parser.add_argument(
        "--shopping-seconds", type=int, help="the concert's usual shopping time (the ETA's prior)"
    )
    parser.add_argument("--json", type=Path, help="also write the reports here")
    args = parser.parse_args(argv)
    reports = []
    for name in args.scenario or sorted(SCENARIOS):
        scenario = SCENARIOS[name]
        given = {
            "customers": args.customers,
            "seed": args.seed,
            "admitted_minutes": args.admitted_minutes,
            "shopping_seconds": args.shopping_seconds,
        }
        changes = {k: v for k, v in given.items() if v}
        if changes:
            scenario = Scenario(**{**scenario.__dict__, **changes})
        reports.append(report(simulate(scenario)))
    print(markdown(reports))
    if args.json:
        args.json.write_text(json.dumps(reports, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
