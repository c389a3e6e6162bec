"""Rows: the seat map of a performance, read by admitted customers.

seat map 50     GET /api/v1/schedules/{id}/seats + X-Queue-Token   1,000 customers, 50 seats
seat map 5000   the same, 5,000 seats
"""

from __future__ import annotations

from pathlib import Path

from bench.harness.data import admit, sale_concert, seat_blocks
from bench.harness.measure import ReadRow
from bench.harness.wrk import write_customers

SEAT_MAPS = {"seat map 50": 50, "seat map 5000": 5_000}
ROWS = tuple(SEAT_MAPS)
READERS = 1_000
PRICE = 50_000  # won a seat


def customers_needed(selected: set[str]) -> int:
    return READERS if selected & set(ROWS) else 0


def prepare(selected: set[str], customers: list, *, scratch: Path) -> list[ReadRow]:
    readers = customers[:READERS]
    rows = []
    for name, seats in SEAT_MAPS.items():
        if name not in selected:
            continue
        concert, schedule, _ = sale_concert(f"Seat map of {seats}", seat_blocks(seats, price=PRICE))
        tokens = admit(concert, [uid for uid, _ in readers])
        viewers = [(bearer, tokens[uid]) for uid, bearer in readers]
        path = f"/api/v1/schedules/{schedule.id}/seats"
        rows.append(
            ReadRow(name, [write_customers(scratch / f"seats-{seats}.tsv", "GET", path, viewers)])
        )
    return rows
