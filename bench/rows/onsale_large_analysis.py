"""What the on-sale at scale (onsale_large.py) measured, as pure functions of plain data: the
admission order against the order of arrival, the shuffle of the customers who came before
opening, the error of every ETA a waiting customer was shown, percentiles and rates. No
Django, no I/O: tests/test_bench_crowd_analysis.py checks them on hand-made data.

Times are seconds from the opening of the sale (negative before it).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

# all_taken: once every seat is sold or held, whoever is admitted waits for held seats to
# come back; the line moves as holds lapse and shoppers give up, which nothing before it shows.
PHASES = ("opening_minute", "rate_bound", "capacity_bound", "all_taken")
OPENING_MINUTE_S = 60.0
# Relative ETA errors only where the real wait was at least this long (as bench/queue_sim.py):
# shorter waits are judged in seconds.
MIN_ACTUAL_S = 10.0
# Admission is capacity-bound while this share of max_active is shopping: between two ticks
# (one a second) the slots freed by payments and departures stay empty until the next one.
FULL_SHARE = 0.95


def percentile(values: Sequence[float], share: float) -> float | None:
    """Nearest-rank percentile (share 0..1) of `values`; None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[min(len(ordered), rank) - 1]


def latency_summary(seconds: Sequence[float]) -> dict:
    """count, p50/p95/p99 and max in milliseconds."""

    def ms(value: float | None) -> float | None:
        return None if value is None else round(value * 1000, 1)

    return {
        "count": len(seconds),
        "p50_ms": ms(percentile(seconds, 0.50)),
        "p95_ms": ms(percentile(seconds, 0.95)),
        "p99_ms": ms(percentile(seconds, 0.99)),
        "max_ms": ms(max(seconds, default=None)),
    }


# --- admission order ---------------------------------------------------------------------------
def _inversions(values: list[int]) -> int:
    """Pairs i < j with values[i] > values[j] (merge sort, O(n log n))."""
    if len(values) < 2:
        return 0
    middle = len(values) // 2
    left, right = values[:middle], values[middle:]
    count = _inversions(left) + _inversions(right)
    i = j = 0
    merged: list[int] = []
    while i < len(left) and j < len(right):
        if left[i] <= right[j]:
            merged.append(left[i])
            i += 1
        else:
            merged.append(right[j])
            count += len(left) - i
            j += 1
    merged += left[i:] + right[j:]
    values[:] = merged
    return count


def admission_order(customers: Iterable[tuple[int, int | None]]) -> dict:
    """Whether customers were let in in the order they arrived.

    `customers`: (arrival key, admission rank) of each, the rank None for one never admitted.
    The arrival key is the server's own order of arrival (its counter breaks ties between
    customers who arrived in the same instant), the rank the place in the order of admission.
    Exact when the admitted, by arrival, were admitted in that order, and nobody still
    waiting arrived before someone admitted (skipped)."""
    rows = sorted(customers)
    admitted = [rank for _, rank in rows if rank is not None]
    last_admitted_key = max((key for key, rank in rows if rank is not None), default=None)
    skipped = sum(
        1
        for key, rank in rows
        if rank is None and last_admitted_key is not None and key < last_admitted_key
    )
    inversions = _inversions(list(admitted))
    return {
        "customers": len(rows),
        "admitted": len(admitted),
        "inversions": inversions,
        "skipped": skipped,
        "exact": inversions == 0 and skipped == 0,
    }


# --- the shuffle before opening ------------------------------------------------------------------
def chi2_sf(x: float, dof: int) -> float:
    """P(X >= x) for a chi-square variable of `dof` degrees of freedom: the regularized upper
    incomplete gamma function Q(dof/2, x/2), by its series below a + 1 and its continued
    fraction above (both converge fast there)."""
    if x <= 0:
        return 1.0
    a, z = dof / 2.0, x / 2.0
    log_prefix = a * math.log(z) - z - math.lgamma(a)
    if z < a + 1:
        term = total = 1.0 / a
        n = a
        for _ in range(10_000):
            n += 1
            term *= z / n
            total += term
            if abs(term) < abs(total) * 1e-15:
                break
        return max(0.0, 1.0 - math.exp(log_prefix) * total)
    # Lentz's method for the continued fraction of Q(a, z)
    tiny = 1e-300
    b = z + 1 - a
    c = 1 / tiny
    d = 1 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        delta = d * c
        h *= delta
        if abs(delta - 1) < 1e-15:
            break
    return min(1.0, math.exp(log_prefix) * h)


def shuffle_uniformity(customers: Sequence[tuple[float, int]], *, bins: int = 10) -> dict:
    """Chi-square test that the admission order of the pre-opening arrivals is independent of
    when they arrived, as a uniform shuffle makes it.

    `customers`: (arrival time, admission rank) of each. The customers are put in `bins`
    groups by arrival (deciles) and `bins` by admission rank; under a uniform shuffle every
    cell of that table holds n / bins² of them. Fewer bins when there are too few customers
    for 5 a cell. A p-value near 0 says early (or late) arrivals were favoured."""
    n = len(customers)
    bins = min(bins, int(math.sqrt(n / 5)))
    if bins < 2:
        return {"customers": n, "bins": None, "chi2": None, "dof": None, "p_value": None}
    by_arrival = sorted(range(n), key=lambda i: (customers[i][0], i))
    by_rank = sorted(range(n), key=lambda i: (customers[i][1], i))
    arrival_bin, rank_bin = [0] * n, [0] * n
    for position, i in enumerate(by_arrival):
        arrival_bin[i] = position * bins // n
    for position, i in enumerate(by_rank):
        rank_bin[i] = position * bins // n
    table = [[0] * bins for _ in range(bins)]
    for i in range(n):
        table[arrival_bin[i]][rank_bin[i]] += 1
    rows = [sum(row) for row in table]
    columns = [sum(table[r][c] for r in range(bins)) for c in range(bins)]
    chi2 = sum(
        (table[r][c] - rows[r] * columns[c] / n) ** 2 / (rows[r] * columns[c] / n)
        for r in range(bins)
        for c in range(bins)
    )
    dof = (bins - 1) ** 2
    return {
        "customers": n,
        "bins": bins,
        "chi2": round(chi2, 2),
        "dof": dof,
        "p_value": round(chi2_sf(chi2, dof), 4),
    }


# --- the ETA -----------------------------------------------------------------------------------
def phase_at(
    t: float,
    samples: Sequence[tuple[float, int]],
    max_active: int,
    *,
    full_share=FULL_SHARE,
    all_taken_at: float | None = None,
) -> str:
    """The phase of the sale at `t`: the first minute after opening; then all-taken from the
    moment every seat was sold or held (`all_taken_at`); else capacity-bound when the last
    sample (time, customers shopping) at or before `t` had the slots (nearly) all taken,
    rate-bound otherwise (free slots: the admission rate is the limit)."""
    if t < OPENING_MINUTE_S:
        return "opening_minute"
    if all_taken_at is not None and t >= all_taken_at:
        return "all_taken"
    shopping = 0
    low, high = 0, len(samples)
    while low < high:  # the last sample at or before t
        middle = (low + high) // 2
        if samples[middle][0] <= t:
            low = middle + 1
        else:
            high = middle
    if low:
        shopping = samples[low - 1][1]
    return "capacity_bound" if shopping >= full_share * max_active else "rate_bound"


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _error_summary(errors: Sequence[float]) -> dict:
    rounded = _rounded
    return {
        "polls": len(errors),
        "p50": rounded(percentile([abs(e) for e in errors], 0.5)),
        "p90": rounded(percentile([abs(e) for e in errors], 0.9)),
        "signed_p50": rounded(percentile(errors, 0.5)),
        "optimistic_share": rounded(sum(e < 0 for e in errors) / len(errors)) if errors else None,
    }


def eta_error(
    shown: Iterable[tuple[int, float, int | None]],
    admitted_at: dict[int, float],
    samples: Sequence[tuple[float, int]],
    max_active: int,
    *,
    all_taken_at: float | None = None,
    min_actual_s: float = MIN_ACTUAL_S,
) -> dict:
    """How wrong the ETAs were. `shown`: (customer, time shown, eta_seconds) of every answer a
    waiting customer got; `admitted_at`: customer -> when the server admitted them.

    The relative error of one ETA is (ETA - actual wait) / actual wait, the actual wait being
    from the moment it was shown to the admission (at least 1 s: the ETA is whole seconds).
    Negative = optimistic. p50 and p90 are of its absolute value; by phase of the sale at the
    moment it was shown (phase_at). ETAs of customers never admitted cannot be judged and
    are only counted, as are answers without an ETA (before opening)."""
    errors: dict[str, list[float]] = {phase: [] for phase in PHASES}
    short: list[float] = []  # |ETA - actual| in seconds where the wait was short
    without_eta = unjudged = 0
    for customer, t, eta in shown:
        if eta is None:
            without_eta += 1
            continue
        if customer not in admitted_at:
            unjudged += 1
            continue
        actual = max(1.0, admitted_at[customer] - t)
        if actual < min_actual_s:
            short.append(abs(eta - actual))
            continue
        phase = phase_at(t, samples, max_active, all_taken_at=all_taken_at)
        errors[phase].append((eta - actual) / actual)
    everything = [e for phase in PHASES for e in errors[phase]]
    return {
        **_error_summary(everything),
        "answers_without_eta": without_eta,
        "etas_of_customers_never_admitted": unjudged,
        # Waits under min_actual_s: judged in seconds, not relatively (the admission tick is
        # once a second, so 2 s for 1 s would be 100 %).
        "short_waits": {
            "answers": len(short),
            "under_s": min_actual_s,
            "abs_error_p50_s": _rounded(percentile(short, 0.5)),
            "abs_error_p90_s": _rounded(percentile(short, 0.9)),
        },
        "by_phase": {phase: _error_summary(errors[phase]) for phase in PHASES},
    }


# --- rates -------------------------------------------------------------------------------------
def per_second(times: Iterable[float], *, start: float, end: float) -> list[int]:
    """How many of `times` fell in each whole second from `start` to `end`."""
    counts = [0] * max(0, math.ceil(end - start))
    for t in times:
        second = math.floor(t - start)
        if 0 <= second < len(counts):
            counts[second] += 1
    return counts


def max_overlap(intervals: Iterable[tuple[float, float]]) -> int:
    """The most intervals [start, end) open at one moment (an end before a start at a tie)."""
    intervals = list(intervals)
    edges = sorted(
        [(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals],
        key=lambda edge: (edge[0], edge[1]),
    )
    most = now = 0
    for _, step in edges:
        now += step
        most = max(most, now)
    return most
