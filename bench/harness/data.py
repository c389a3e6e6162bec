"""Test data, made fast: customers by bulk insert, concerts on sale now, seat maps, customers
let in by the real queue. Django must be set up (run.BenchRun) before any of these runs.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

CUSTOMER_EMAIL_PREFIX = "bench-"
MAX_ROWS_PER_SECTION = 100
UNCLAIMED_ADMISSION_SECONDS = 4 * 3600  # how long admit()'s customers keep an unclaimed slot


def create_customers(n: int, *, prefix: str = CUSTOMER_EMAIL_PREFIX) -> list[tuple[int, str]]:
    """n customers with API tokens, their emails <prefix><i>@example.com (one prefix per
    call). Returns (user id, bearer token) of each."""
    from django.contrib.auth.hashers import make_password
    from rest_framework.authtoken.models import Token

    from accounts.models import User

    password = make_password("bench-password")  # one hash for all (FAST_PASSWORD_HASHER)
    User.objects.bulk_create(
        (User(email=f"{prefix}{i}@example.com", password=password) for i in range(n)),
        batch_size=2000,
    )
    user_ids = (
        User.objects.filter(email__startswith=prefix).order_by("id").values_list("id", flat=True)
    )
    tokens = [Token(key=secrets.token_hex(20), user_id=uid) for uid in user_ids]
    Token.objects.bulk_create(tokens, batch_size=2000)
    return [(t.user_id, t.key) for t in tokens]


def create_concert(title: str, **fields):
    """A published concert on sale for an hour already, with one schedule a week ahead;
    `fields` override Concert fields (queue settings, hold_minutes)."""
    from concerts.models import Concert, Schedule

    now = datetime.now(UTC)
    concert = Concert.objects.create(
        title=title,
        artist="Bench",
        venue="Bench hall",
        is_published=True,
        sale_opens_at=now - timedelta(hours=1),
        **fields,
    )
    Schedule.objects.create(
        concert=concert, starts_at=now + timedelta(days=7), ends_at=now + timedelta(days=7, hours=2)
    )
    return concert


def seat_blocks(
    seats: int, *, price: int, row_width: int | None = None, vip_price: int | None = None
) -> list:
    """A seat map of `seats` seats (a multiple of 10) as SeatBlocks, in sections A, B, ... of at
    most 100 rows. Rows are `row_width` seats wide; by default 100 while that many are left,
    then 10, so that a big map is a few large blocks. With `vip_price` the first quarter of the
    rows (at least one) are grade VIP at that price, in a section of their own; the rest are
    grade R at `price`."""
    from concerts.services import SeatBlock

    if seats <= 0 or seats % 10:
        raise ValueError(f"seats: a positive multiple of 10 (not {seats})")
    widths: list[int] = []
    while sum(widths) < seats:
        widths.append(row_width or (100 if seats - sum(widths) >= 100 else 10))
    vip_rows = max(1, len(widths) // 4) if vip_price is not None else 0

    sections: list[list] = []  # [grade, price, row width, rows], one per section
    for i, width in enumerate(widths):
        grade = ("VIP", vip_price) if i < vip_rows else ("R", price)
        last = sections[-1] if sections else None
        if (
            last
            and (last[0], last[1], last[2]) == (*grade, width)
            and last[3] < MAX_ROWS_PER_SECTION
        ):
            last[3] += 1
        else:
            sections.append([*grade, width, 1])
    return [
        SeatBlock(chr(ord("A") + i), grade, grade_price, rows, width)
        for i, (grade, grade_price, width, rows) in enumerate(sections)
    ]


def sale_concert(title: str, blocks: list):
    """A concert whose queue lets everyone in at once, with one schedule of these seats.
    Returns the concert, its schedule and the schedule's seat ids."""
    from concerts.services import seat_map_generate

    concert = create_concert(
        title,
        queue_max_active=1_000_000,
        queue_admit_per_minute=3_000_000,  # the token bucket holds a 2 s burst: 100,000
        queue_admitted_minutes=120,
        hold_minutes=60,
    )
    schedule = concert.schedules.get()
    seat_map_generate(schedule_ids=[schedule.id], blocks=blocks)
    seat_ids = list(schedule.seats.order_by("id").values_list("id", flat=True))
    return concert, schedule, seat_ids


def queue_nonce(user_id: int) -> str:
    return f"{user_id:016x}"


def enter_queue(concert_id: int, user_ids) -> dict[int, int]:
    """Put each user in the concert's line with the real ENTER script, pipelined by the
    thousand (a million entries take seconds, not the hours of one request each). Returns
    each user's order key in the line where the code under test signs it into the token."""
    from django.utils import timezone

    from queueing.redis_queue import queue_pipeline, run_script, to_ms

    now = to_ms(timezone.now())
    user_ids, orders = list(user_ids), {}
    for start in range(0, len(user_ids), 1000):
        pipe = queue_pipeline()
        batch = user_ids[start : start + 1000]
        for uid in batch:
            run_script("ENTER", concert_id, [uid, queue_nonce(uid), now, 0, 0], client=pipe)
        for uid, reply in zip(batch, pipe.execute(), strict=True):
            # {nonce, order, created, ...} since tokens carry the order key; before, {state,
            # nonce, created, ...}, and no order is needed.
            if _tokens_carry_order():
                orders[uid] = int(float(reply[1]))
    return orders


def _tokens_carry_order() -> bool:
    import inspect

    from queueing.tokens import token_issue

    return "order" in inspect.signature(token_issue).parameters


def queue_token(concert_id: int, user_id: int, order: int | None = None) -> str:
    """The queue token of an entry made by enter_queue, as the code under test issues it."""
    from queueing.tokens import token_issue

    extra = {"order": order} if _tokens_carry_order() else {}
    return token_issue(concert_id=concert_id, user_id=user_id, nonce=queue_nonce(user_id), **extra)


def admit(concert, user_ids: list[int]) -> dict[int, str]:
    """Enter each customer in the concert's queue and let them all in with one admission
    tick. Returns their queue tokens by user id."""
    from queueing.services import queue_admit_tick

    if hasattr(concert, "queue_claim_seconds"):
        # Let in while the data is prepared, minutes before the row makes their first call:
        # production's claim window (30 s) would hand their slots on first.
        concert.queue_claim_seconds = UNCLAIMED_ADMISSION_SECONDS
        type(concert).objects.filter(id=concert.id).update(
            queue_claim_seconds=UNCLAIMED_ADMISSION_SECONDS
        )
    orders = enter_queue(concert.id, user_ids)
    tick = queue_admit_tick(concert=concert)
    if tick.admitted != len(user_ids) or tick.waiting != 0:
        raise RuntimeError(f"admitted {tick.admitted} of {len(user_ids)} ({tick})")
    return {uid: queue_token(concert.id, uid, orders.get(uid)) for uid in user_ids}
