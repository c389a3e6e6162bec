"""Helpers for tests that race many requests on separate database connections."""

import threading
from concurrent.futures import ThreadPoolExecutor

from django.contrib.auth.hashers import make_password
from django.db import connection

from accounts.models import User


def run_concurrently(calls: int, work, workers: int = 32) -> list:
    """`work(i)` for i in range(calls) on many threads, each with its own DB connection.
    The first `workers` calls start together, released by one barrier. Exceptions are
    returned, not raised, so a test can count them."""
    barrier = threading.Barrier(min(workers, calls))

    def one(i):
        if i < workers:
            barrier.wait()
        try:
            return work(i)
        except Exception as error:  # noqa: BLE001 - the test inspects every outcome
            return error
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(one, range(calls)))


def make_customers(count: int, prefix: str = "racer") -> list[User]:
    password = make_password("not-used-here")
    User.objects.bulk_create(
        User(email=f"{prefix}{i}@example.com", password=password) for i in range(count)
    )
    return list(User.objects.filter(email__startswith=prefix).order_by("id"))


def admit_everyone(users: list[User], concert) -> dict[int, str]:
    """Enter each customer in the concert's queue and let them all in: user id -> token."""
    from queueing.services import queue_admit_tick, queue_enter

    concert.queue_max_active = max(concert.queue_max_active, len(users))
    concert.queue_admit_per_minute = max(concert.queue_admit_per_minute, 30 * len(users))
    concert.save()
    tokens = {user.id: queue_enter(concert_id=concert.id, user_id=user.id).token for user in users}
    queue_admit_tick(concert=concert)
    return tokens
