"""Watching the queue from Redis itself, beside the customers' view of it:

- QueueWatch samples each concert's numbers every half second (the operators' STATS script):
  how many are admitted now must never exceed the concert's max_active, in any phase.
- line_snapshot reads a concert's whole line at one instant (one MULTI): who waits in which
  order, who is admitted, whose entry ended and why. A snapshot before a fault and one after
  the recovery tell whether everyone kept their place, in the same relative order.

It reads our private Redis with a client of its own (short timeouts, no circuit breaker), so
that a Redis that is down or frozen costs it a failed sample, never a stalled run.
"""

from __future__ import annotations

import bisect
import threading
import time
from dataclasses import dataclass, field

import redis

from queueing import scripts
from queueing.redis_queue import queue_keys

SAMPLE_SECONDS = 0.5


@dataclass(frozen=True)
class Sample:
    at: float
    concert_id: int
    waiting: int
    admitted: int


class QueueWatch(threading.Thread):
    def __init__(self, client: redis.Redis, concert_ids: list[int], clock):
        super().__init__(name="queue-watch", daemon=True)
        self.client, self.concert_ids, self.clock = client, concert_ids, clock
        self.samples: list[Sample] = []
        self.failed_samples: list[float] = []
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(SAMPLE_SECONDS):
            for concert_id in self.concert_ids:
                self._sample(concert_id)

    def _sample(self, concert_id: int) -> None:
        at = self.clock()
        try:
            waiting, admitted, *_rest = self.client.eval(
                scripts.STATS, len(scripts.KEY_NAMES), *queue_keys(concert_id), _now_ms()
            )
        except redis.RedisError:
            self.failed_samples.append(at)
            return
        self.samples.append(Sample(at, concert_id, int(waiting), int(admitted)))

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)

    def most_admitted(self, start: float, end: float, concert_id: int) -> int | None:
        """The most customers admitted at once in [start, end); None: no sample."""
        return max(
            (
                s.admitted
                for s in self.samples
                if s.concert_id == concert_id and start <= s.at < end
            ),
            default=None,
        )


@dataclass
class LineSnapshot:
    at: float
    waiting: list[tuple[int, str]]  # (user, entry nonce), first in line first
    admitted: dict[int, float] = field(default_factory=dict)  # user -> admitted until (ms)
    entries: dict[int, str] = field(default_factory=dict)  # user -> nonce of current entry
    ended: dict[int, str] = field(default_factory=dict)  # user -> why the entry ended


def line_snapshot(
    client: redis.Redis, concert_id: int, clock, patience: float = 30
) -> LineSnapshot:
    """The concert's line at one instant, retried while Redis does not answer."""
    keys = dict(zip(scripts.KEY_NAMES, queue_keys(concert_id), strict=True))
    deadline = time.monotonic() + patience
    while True:
        try:
            pipe = client.pipeline(transaction=True)
            pipe.zrange(keys["waiting"], 0, -1)
            pipe.zrange(keys["admitted"], 0, -1, withscores=True)
            pipe.hgetall(keys["entries"])
            pipe.hgetall(keys["ended"])
            waiting, admitted, entries, ended = pipe.execute()
            at = clock()
            break
        except redis.RedisError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    nonces = {int(user): entry.decode()[:16] for user, entry in entries.items()}
    return LineSnapshot(
        at=at,
        waiting=[(int(user), nonces.get(int(user), "")) for user in waiting],
        admitted={int(user): until for user, until in admitted},
        entries=nonces,
        ended={int(user): reason.decode() for user, reason in ended.items()},
    )


def places_kept(before: LineSnapshot, after: LineSnapshot, made_since) -> dict:
    """Did everyone waiting `before` keep their place `after`? Each (customer, entry) that
    still waits must be in the same relative order; one that no longer waits must have been
    let in, or have left or paid, or have moved on to a new entry the customer made
    (`made_since(user)`: the nonces of their entries made since `before`). Dropped: an entry
    that ended as abandoned, that Redis no longer knows at all, or that another entry the
    customer never made has replaced."""
    before_set, after_set = set(before.waiting), set(after.waiting)
    still = [p for p in before.waiting if p in after_set]
    rank_after = {p: i for i, p in enumerate(p for p in after.waiting if p in before_set)}
    out_of_order = len(still) - _longest_increasing([rank_after[p] for p in still])
    moved_on, admitted, finished, dropped = 0, 0, 0, []
    for user, nonce in before.waiting:
        if (user, nonce) in after_set:
            continue
        current = after.entries.get(user)
        if current is None:
            dropped.append({"user_id": user, "nonce": nonce, "after": "unknown to Redis"})
        elif current != nonce and current in made_since(user):
            moved_on += 1  # a new entry of theirs (the customers say whether they chose it)
        elif current != nonce:
            dropped.append(
                {"user_id": user, "nonce": nonce, "after": f"replaced by entry {current}"}
            )
        elif user in after.admitted:
            admitted += 1
        elif after.ended.get(user) in ("left", "done"):
            finished += 1
        else:
            reason = after.ended.get(user, "in no set")
            dropped.append({"user_id": user, "nonce": nonce, "after": f"ended: {reason}"})
    return {
        "waiting_before": len(before.waiting),
        "still_waiting": len(still),
        "out_of_order": out_of_order,
        "admitted_since": admitted,
        "left_or_paid_since": finished,
        "new_entry_since": moved_on,
        "dropped": dropped,
        "kept": out_of_order == 0 and not dropped,
    }


def _longest_increasing(values: list[int]) -> int:
    """Length of the longest increasing subsequence: the most customers whose relative order
    is kept; everyone else had to move."""
    tails: list[int] = []  # tails[k]: the smallest last value of an increasing run of k + 1
    for value in values:
        i = bisect.bisect_left(tails, value)
        if i == len(tails):
            tails.append(value)
        else:
            tails[i] = value
    return len(tails)


def _now_ms() -> int:
    return int(time.time() * 1000)
